/**
 * The layering of src/ (checked by `npm run lint:deps`): imports point down,
 * layers <- models <- heads <- tasks, with training, transfer and pretraining above the models;
 * errors.ts and utils/ are leaves every folder may use. No folder of src/ depends on itself through others.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'layers-stay-low',
      severity: 'error',
      comment: 'src/layers holds building blocks: it may not import models, heads, tasks or the training code above them.',
      from: { path: '^src/layers/' },
      to: { path: '^src/(models|heads|tasks|train|transfer|pretrain)/' },
    },
    {
      name: 'models-below-heads',
      severity: 'error',
      comment: 'src/models may not import heads, tasks, training or transfer code.',
      from: { path: '^src/models/' },
      to: { path: '^src/(heads|tasks|train|transfer)/' },
    },
    {
      name: 'heads-below-tasks',
      severity: 'error',
      comment: 'src/heads may not import tasks or the trainer.',
      from: { path: '^src/heads/' },
      to: { path: '^src/(tasks|train)/' },
    },
    {
      name: 'leaves-stay-leaves',
      severity: 'error',
      comment: 'src/errors.ts and src/utils are leaves: they import nothing else of src/.',
      from: { path: '^src/(errors\\.ts|utils/)' },
      to: { path: '^src/', pathNot: '^src/(errors\\.ts|utils/)' },
    },
    {
      name: 'no-folder-cycles',
      severity: 'error',
      comment: 'No circular dependencies between the top-level folders of src/.',
      scope: 'folder',
      from: { path: '^src/[^/]+$' },
      to: { path: '^src/[^/]+$', circular: true },
    },
    {
      name: 'no-circular',
      severity: 'warn',
      comment:
        'Circular imports between modules (reported, not failed: an ES module cycle works as long as no value is read while loading).',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.cjs'],
    },
  },
};

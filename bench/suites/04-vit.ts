import '../../src/models/vit/index.js';
import { forwardSuite } from '../harness.js';

/** vit_small_patch16_224 forward at 224 px. */
export default forwardSuite('vit_small_patch16_224', [['vit_small_patch16_224', 224]]);

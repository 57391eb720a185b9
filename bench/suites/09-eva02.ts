import '../../src/models/eva/index.js';
import { forwardSuite } from '../harness.js';

/** eva02_base_patch14_224 forward at 224 px: separate q/k/v, SwiGLU with sub-LN, 2-D RoPE on 256 patch tokens. */
export default forwardSuite('eva02_base_patch14_224', [['eva02_base_patch14_224', 224]]);

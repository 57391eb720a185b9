import '../../src/models/pvt/index.js';
import { forwardSuite } from '../harness.js';

/** pvt_small forward at 224 px: spatial-reduction attention (keys/values reduced 8x, 4x, 2x), class token in stage 4. */
export default forwardSuite('pvt_small', [['pvt_small', 224]]);

import '../../src/models/pvtV2/index.js';
import '../../src/models/mvitV2/index.js';
import { forwardSuite } from '../harness.js';

/** pvt_v2_b0 and mvitv2_tiny forward at 224 px. */
export default forwardSuite('pvt_v2_b0 / mvitv2_tiny', [
  ['pvt_v2_b0', 224],
  ['mvitv2_tiny', 224],
]);

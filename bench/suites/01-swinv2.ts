import '../../src/models/swin/index.js';
import { forwardSuite } from '../harness.js';

/** swinv2_tiny_window8_256 forward at 256 px. */
export default forwardSuite('swinv2_tiny_window8_256', [['swinv2_tiny_window8_256', 256]]);

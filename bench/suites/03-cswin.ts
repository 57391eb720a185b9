import '../../src/models/cswin/index.js';
import { forwardSuite } from '../harness.js';

/** cswin_tiny_224 forward at 224 px. */
export default forwardSuite('cswin_tiny_224', [['cswin_tiny_224', 224]]);

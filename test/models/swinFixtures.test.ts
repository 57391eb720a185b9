import { swin, swinV2 } from '../../src/models/swin/swinTransformer.js';
import { describeFixtureParity } from '../helpers/fixtureParity.js';

describeFixtureParity('swin_p4w4_64', swin, { label: 'Swin' });
describeFixtureParity('swinv2_p4w4_64', swinV2, { label: 'SwinV2' });

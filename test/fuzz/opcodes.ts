// The control opcodes the fuzz targets try each input as.
import {
  P_ACK_V1,
  P_CONTROL_HARD_RESET_CLIENT_V2,
  P_CONTROL_HARD_RESET_CLIENT_V3,
  P_CONTROL_HARD_RESET_SERVER_V2,
  P_CONTROL_SOFT_RESET_V1,
  P_CONTROL_V1,
  P_CONTROL_WKC_V1,
} from '../../src/shared/protocol/opcodes';
import type { ControlOpcode } from '../../src/shared/protocol/opcodes';

export const CONTROL_OPCODES: readonly ControlOpcode[] = [
  P_CONTROL_SOFT_RESET_V1,
  P_CONTROL_V1,
  P_ACK_V1,
  P_CONTROL_HARD_RESET_CLIENT_V2,
  P_CONTROL_HARD_RESET_SERVER_V2,
  P_CONTROL_HARD_RESET_CLIENT_V3,
  P_CONTROL_WKC_V1,
];

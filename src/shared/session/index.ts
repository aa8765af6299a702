// The control session: one ControlSession per peer, a StatelessResponder per server socket.
export { ControlSession } from './control-session';
export { StatelessResponder, type ResponderResult, type StatelessResponderOptions } from './stateless-responder';
export { type WrapConfig } from './control-wrap';
export { type VerifyX509Name, subjectCommonName } from './peer-verify';
export type * from './types';

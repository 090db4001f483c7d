/** RELOAD message codes (RFC 6940 s14.8): requests are odd, the answer is request + 1. */
export const MessageCode = {
  ProbeReq: 1,
  ProbeAns: 2,
  AttachReq: 3,
  AttachAns: 4,
  StoreReq: 7,
  StoreAns: 8,
  FetchReq: 9,
  FetchAns: 10,
  FindReq: 13,
  FindAns: 14,
  JoinReq: 15,
  JoinAns: 16,
  LeaveReq: 17,
  LeaveAns: 18,
  UpdateReq: 19,
  UpdateAns: 20,
  RouteQueryReq: 21,
  RouteQueryAns: 22,
  PingReq: 23,
  PingAns: 24,
  StatReq: 25,
  StatAns: 26,
  AppAttachReq: 29,
  AppAttachAns: 30,
  ConfigUpdateReq: 33,
  ConfigUpdateAns: 34,
  /** RELOAD's experimental pair exp_a (s14.8): a SIP message carried through the overlay. */
  SipTunnelReq: 35,
  SipTunnelAns: 36,
  /** Ours, unassigned in RELOAD: a public peer asks another to answer a STUN CHANGE-REQUEST (RFC 5780). */
  NatProbeReq: 37,
  NatProbeAns: 38,
  Error: 0xffff,
} as const;
export type MessageCode = (typeof MessageCode)[keyof typeof MessageCode];

export function isRequestCode(code: number): boolean {
  return code !== MessageCode.Error && code % 2 === 1;
}

export function answerCodeFor(requestCode: number): number {
  return requestCode + 1;
}

/** RELOAD error codes (RFC 6940 s14.9). */
export const ErrorCode = {
  Forbidden: 2,
  NotFound: 3,
  RequestTimeout: 4,
  GenerationCounterTooLow: 5,
  IncompatibleWithOverlay: 6,
  UnsupportedForwardingOption: 7,
  DataTooLarge: 8,
  DataTooOld: 9,
  TtlExceeded: 10,
  MessageTooLarge: 11,
  UnknownKind: 12,
  UnknownExtension: 13,
  ResponseTooLarge: 14,
  ConfigTooOld: 15,
  ConfigTooNew: 16,
  InProgress: 17,
  InvalidMessage: 20,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export function errorCodeName(code: number): string {
  for (const [name, value] of Object.entries(ErrorCode)) if (value === code) return name;
  return `error-${code}`;
}

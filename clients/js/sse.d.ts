// Type declarations for pushd's sse.js: the npm package @pushd/client, also served by pushd at every
// app's base path (these at {base}/sse.d.ts).
// Package use: import Sse from '@pushd/client'
// Module use:  const { default: Sse } = await import('/sse/demo')
// Classic use: <script src="/sse/demo?script-type=script"></script> then window.Sse

/**
 * Handler of a server event; connect-close handlers also get the parsed close payload, connect-error
 * handlers the parsed error.
 */
export type SseEventHandler = (this: Sse, event: SseMessageEvent, info?: SseCloseInfo | SseConnectError) => void

/** Event names mapped to handlers; a null handler only subscribes (the window event bus still fires). */
export type SseEventListeners = Record<string, SseEventHandler | null>

/** A MessageEvent as handed to listeners and intercepts. */
export interface SseMessageEvent extends MessageEvent {
  /** Base path of the client that received the event (set before intercepts and the window bus). */
  url?: string
  /** connect-close only: 'client' if this client closed the connection, else 'server'. */
  whoTriggerClose?: 'client' | 'server'
  /** connect-close only: the client's reason (e.g. 'visibilitychange', 'switchURL') or 'server-close'. */
  closeReason?: string
}

/** Payload of connect-finish. */
export interface SseConnectResponse {
  connectionId: string
  serverTime: number
  reconnectTime: number
  name: string
  enableCluster?: boolean
  version: string
  /**
   * The connection is in streams with history (its channels', its user's): the id that resumes them
   * from here, what the client sends as lastEventId until an event brings a newer one.
   */
  position?: string
  /**
   * Present when the connect named positions (a reconnect): true if every stream was resumed
   * exactly, false if some could not be (they are named in the sse-gap event that follows).
   */
  resumed?: boolean
}

/** A stream of an sse-gap event: a channel's or a user's, and why it could not be resumed. */
export interface SseGapStream {
  channel?: string
  user?: string
  /**
   * trimmed: more events were missed than the stream keeps; expired: older than its TTL; epoch: its
   * history was lost (e.g. a store restarted); unknown: the id held no position for it (the
   * connection was not in it); unavailable: the history store could not be read.
   */
  reason: 'trimmed' | 'expired' | 'epoch' | 'unknown' | 'unavailable' | string
}

/**
 * data (JSON) of sse-gap, sent right after connect-finish when streams could not be resumed exactly:
 * the events they got meanwhile are (partly) lost, so refetch their state. List 'sse-gap' in
 * eventListeners to get it.
 */
export interface SseGap {
  streams: SseGapStream[]
}

/**
 * Payload of connect-close: the server's JSON, or {connectionId, reason} for a client close.
 * Server reasons: 'kicked', 'client-limit', 'user-limit' and 'client-close' leave the client closed until
 * the tab is shown again; after any other (e.g. 'token-expired') it reconnects with backoff, with the
 * query of options.query (call it a function to supply a fresh token) and the page's current cookies.
 */
export interface SseCloseInfo {
  connectionId: string
  reason?: 'kicked' | 'client-limit' | 'user-limit' | 'client-close' | 'token-expired' | string
  [key: string]: unknown
}

/**
 * Payload of connect-error (its data as JSON, and the handler's second argument): the server refused
 * the stream. After 401 or 403 the client stays closed until connect() is called (with a fixed
 * options.query, e.g. a fresh token); after any other it reconnects with backoff, no sooner than
 * retryAfter seconds. Dispatched on the window bus whenever useWindowEventBus is on.
 */
export interface SseConnectError {
  /** HTTP status of the refused connect; 0 when the server could not be asked (network, CORS). */
  status: number
  /** The server's error text ({"error": …}), or the network error. */
  error: string
  /** Seconds of the answer's Retry-After (sent with 503 when the node is full), or null. */
  retryAfter: number | null
}

/**
 * How subscribe() and unsubscribe() reject when the server refuses: message is the server's error
 * text (a refused join names the channel). Network failures are retried on the next connection like
 * send's; after four they reject with the TypeError of fetch.
 */
export interface SseChannelError extends Error {
  /**
   * HTTP status: 403 the app's channel policy refuses the join, 400 a bad name or too many channels,
   * 404 not this client's connection (a call whose connection closed meanwhile is kept for the next
   * one instead), 503 the policy's backend could not be asked.
   */
  status: number
}

/** data of the sse-change-active event. */
export interface SseChangeActive {
  oldActive: boolean
  newActive: boolean
  duration: SseDuration
}

/** Accumulated active seconds. */
export interface SseDuration {
  /** Seconds stored for this tab's session (past active segments). */
  sessionDuration: number
  /** Seconds of the current active segment, 0 if inactive. */
  duration: number
}

export interface SseOptions {
  /** Base path of the app, e.g. '/sse/demo'. Default '/api/sse'. */
  url?: string
  /** Maximum connection lifetime in ms, sent as keepaliveTime. Default 900000. */
  keepaliveTime?: number
  /** Server events to listen to; an array of names means handlers of null. */
  eventListeners?: SseEventListeners | string[]
  /** Called (this = the client) with every event before it goes to the window bus. */
  intercepts?: Array<(this: Sse, event: SseMessageEvent) => void>
  /**
   * Extra query parameters for connect, send, upload, add/removeListener.do and ack.do (a send's or
   * upload's own query wins over them); a function is called
   * (this = the client) for every connect and call, so a page can hand over a refreshed token,
   * e.g. after a connect-close with reason 'token-expired'.
   */
  query?: Record<string, string> | ((this: Sse) => Record<string, string>)
  /** EventSource withCredentials. Default true. */
  withCredentials?: boolean
  /** Device id; default the one stored in localStorage (created once). */
  clientId?: string | null
  /** Access time in ms; default the tab's first access time (sessionStorage) or now. */
  accessTimestamp?: number | null
  /** First reconnect delay in ms; default the server's reconnectTime (5000). */
  reconnectTime?: number | null
  /** Cap of the exponential reconnect backoff in ms. Default 30000. */
  maxReconnectTime?: number
  /** How long QoS acks are batched, in ms. Default 100. */
  ackDelay?: number
  /** Re-dispatch listened events on window. Default true. */
  useWindowEventBus?: boolean
  /** ms without mouse/keyboard activity after which the page counts as inactive. Default 5000. */
  leaveTimeout?: number
  /** Interval of the inactivity check in ms. Default 500. */
  leaveCheckInterval?: number
  /** sessionStorage key of the accumulated duration; default 'sseDuration' + url. */
  sseDurationKey?: string
}

export default class Sse {
  static version: string
  static IMPORT_MODULE_TIMESTAMP: number
  static DEFAULT_RECONNECT_TIME: number
  static STATE_CONNECTING: 0
  static STATE_OPEN: 1
  static STATE_CLOSED: 2
  static SERVER_TRIGGER_CLOSE: 'server'
  static CLIENT_TRIGGER_CLOSE: 'client'
  static DEFAULT_OPTIONS: Required<SseOptions>
  /** connect-close reasons after which the client does not reconnect by itself. */
  static STAY_CLOSED: string[]
  /** connect-error statuses after which the client does not reconnect until connect() is called. */
  static STOP_STATUS: number[]

  constructor (options?: SseOptions)

  readonly options: Required<SseOptions> & { eventListeners: SseEventListeners }
  readonly clientId: string
  readonly instanceId: string
  readonly accessTimestamp: number
  readonly createTimestamp: number
  /** One of the STATE_* constants. */
  readonly state: 0 | 1 | 2
  /** Id of the current connection, null while disconnected. */
  readonly connectionId: string | null
  readonly connectResponse?: SseConnectResponse
  readonly closeResponse?: SseCloseInfo
  readonly connectionName?: string
  readonly serverVersion?: string
  /** Last QoS message id received; sent back as lastEventId on reconnect when there is no position. */
  readonly lastQosId: string | null
  /**
   * The latest positions id ('p.…': connect-finish's position, then each event's id in streams with
   * history); sent as lastEventId on every reconnect, so the server replays what was missed.
   * connectResponse.resumed says whether it could. switchURL forgets it.
   */
  readonly position: string | null
  /** The latest connect-error, null before any. */
  readonly connectError: SseConnectError | null

  /**
   * Opens the stream (no-op while connected, while the tab is hidden, or after close/destroy); the way
   * to try again after a connect-error of 401 or 403.
   */
  connect (): void
  /** True while the stream is open and connect-finish has arrived. */
  isActive (): boolean
  getEventListeners (): SseEventListeners
  getDuration (): SseDuration

  /** Listen to more events; sent to the server now or after the next connect-finish. Resolves with the server's Response. */
  addListener (name: string, handler?: SseEventHandler | null): Promise<Response>
  addListener (listeners: SseEventListeners | string[]): Promise<Response>
  /** Stop listening; stays removed across reconnects. */
  removeListener (name: string, handler?: SseEventHandler | null): Promise<Response>
  removeListener (listeners: SseEventListeners | string[]): Promise<Response>

  /**
   * POST {url}/connect/message/{path}.do with a JSON body and options.query, then query; queued while
   * disconnected, sent in call order.
   */
  send (path?: string, body?: unknown, query?: Record<string, string>, headers?: Record<string, string>): Promise<Response>
  /** POST {url}/connect/upload/{path}.do with a multipart body; queued like send. */
  upload (path: string, formData: FormData, query?: Record<string, string>, headers?: Record<string, string>): Promise<Response>

  /**
   * Joins channels: POST {url}/connect/subscribe.do now, or queued like send until the next
   * connect-finish. Resolves with the connection's channels afterwards; rejects with an
   * SseChannelError when refused. Joined channels are passed as channels= on every reconnect (a
   * reconnect the policy then refuses is a connect-error).
   */
  subscribe (channels: string | string[]): Promise<string[]>
  /**
   * Leaves channels (unsubscribe.do, queued like subscribe); later connects no longer join them, not
   * even a channel of options.query. Resolves with the connection's channels afterwards.
   */
  unsubscribe (channels: string | string[]): Promise<string[]>

  /** Closes the current connection (beacon), forgets the channels joined, and connects to another base path. */
  switchURL (url: string): void
  /** Closes for good; queued calls are rejected; no timer or listener is left. */
  close (reason?: string): void
  /** close('destroy'). */
  destroy (): void
  toString (): string
}

declare global {
  interface Window {
    /** The class, registered by the classic-script form. */
    Sse: typeof Sse
    /** The most recently created client. */
    sse: Sse | null
  }
}

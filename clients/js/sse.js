/*
 * sse.js - pushd's browser client (ES2020, no dependencies, no build step).
 * Public API compatible with the sse-server 1.2.x client. An ES module with
 * the class as its default export: the npm package @pushd/client, and what
 * pushd serves at every app's base path. ?script-type=script serves it as a
 * classic script (pushd removes the final export statement); the class is
 * window.Sse in both forms.
 * What it adds to that client: docs/client.md.
 */
class Sse {
  constructor (options) {
    const o = this.options = Object.assign({}, Sse.DEFAULT_OPTIONS, options)
    const l = o.eventListeners || {}
    o.eventListeners = Object.assign(Object.create(null), Array.isArray(l) ? Object.fromEntries(l.map(n => [n, null])) : l)
    o.intercepts = [...(o.intercepts || [])]
    o.query = o.query || {}
    this.durationKey = o.sseDurationKey || 'sseDuration' + o.url
    const at = 'sseAccessTimestamp'
    this.clientId = o.clientId || Sse.store('localStorage', 'sseClientId') || Sse.uuid()
    Sse.store('localStorage', 'sseClientId', this.clientId)
    this.accessTimestamp = o.accessTimestamp || +Sse.store('sessionStorage', at) || Date.now()
    if (!Sse.store('sessionStorage', at)) Sse.store('sessionStorage', at, this.accessTimestamp)
    this.instanceId = Sse.uuid()
    this.createTimestamp = this.lastActiveTime = this.durationTime = Date.now()
    this.state = Sse.STATE_CLOSED
    this.es = this.connectionId = this.clientClose = this.lastQosId = this.position = this.connectError = null
    this.queue = []
    this.acks = []
    this.seen = new Set()
    // channel → joined (sent with every connect) or left
    this.chans = new Map()
    this.attempt = this.timer = this.ackTimer = this.connectedAt = this.probes = 0
    this.active = true
    this.destroyed = false
    const act = () => { this.lastActiveTime = Date.now() }
    this._ev = e => this._handle(e)
    this._open = e => { if (e.target === this.es) this.state = Sse.STATE_OPEN }
    this._err = e => {
      const es = e.target
      if (es !== this.es) return
      // CLOSED before open: the server answered but not with a stream (EventSource hides the status).
      const refused = es.readyState === 2 && this.state === Sse.STATE_CONNECTING
      this._drop()
      refused ? this._probe(es.url) : this._retry()
    }
    this._docEvents = [
      ['visibilitychange', () => Sse.hidden() ? this._close('visibilitychange') : (this.attempt = 0, this.connect())],
      ['mouseover', act], ['click', act], ['keydown', act], ['touchstart', act]]
    this._winEvents = [['pagehide', () => this._close('unload')], ['pageshow', e => e.persisted && this.connect()]]
    this._docEvents.forEach(([n, f]) => document.addEventListener(n, f, { passive: true }))
    this._winEvents.forEach(([n, f]) => window.addEventListener(n, f))
    this._tick = setInterval(() => {
      const a = !Sse.hidden() && Date.now() - this.lastActiveTime < o.leaveTimeout
      if (a !== this.active) this._setActive(a)
    }, o.leaveCheckInterval)
    window.sse = this
    this.connect()
  }

  /**
   * Opens the stream unless one is open or connecting, the tab is hidden, or the client was closed.
   * Also the way to try again after a connect-error of 401 or 403.
   */
  connect () {
    if (this.destroyed || this.es || Sse.hidden()) return
    clearTimeout(this.timer)
    this.timer = 0
    this.probes++
    const o = this.options
    const p = new URLSearchParams()
    const m = window.performance && performance.memory
    const add = (k, v) => p.append(k, v)
    add('sessionDuration', Sse.store('sessionStorage', this.durationKey) || '0')
    add('keepaliveTime', o.keepaliveTime)
    add('clientId', this.clientId)
    add('clientVersion', Sse.version)
    add('screen', `${screen.width}x${screen.height}`)
    add('accessTime', this.accessTimestamp)
    add('listeners', Object.keys(o.eventListeners).join(','))
    add('useWindowEventBus', !!o.useWindowEventBus)
    add('locationHref', location.href)
    add('clientImportModuleTime', Sse.IMPORT_MODULE_TIMESTAMP)
    add('clientInstanceTime', this.createTimestamp)
    add('clientInstanceId', this.instanceId)
    if (m) ['jsHeapSizeLimit', 'totalJSHeapSize', 'usedJSHeapSize'].forEach(k => add(k, m[k]))
    add('ack', '1')
    const last = this.position || this.lastQosId
    if (last) add('lastEventId', last)
    Object.entries(this._query()).forEach(([k, v]) => add(k, v))
    if (this.chans.size) {
      const s = new Set(p.getAll('channel').concat(p.getAll('channels')).join().split(','))
      this.chans.forEach((j, c) => j ? s.add(c) : s.delete(c))
      s.delete('')
      p.delete('channel')
      p.delete('channels')
      add('channels', [...s])
    }
    const es = this.es = new EventSource(`${o.url}/connect?${p}`, { withCredentials: !!o.withCredentials })
    this.state = Sse.STATE_CONNECTING
    es.addEventListener('open', this._open)
    es.addEventListener('error', this._err)
    new Set([...Sse.BUILTIN, ...Object.keys(o.eventListeners)]).forEach(n => es.addEventListener(n, this._ev))
  }

  /** True once connect-finish arrived on an open stream. */
  isActive () { return this.state === Sse.STATE_OPEN && !!this.connectionId }

  getEventListeners () { return this.options.eventListeners }

  /** {sessionDuration: stored seconds, duration: seconds of the current active segment}. */
  getDuration () {
    return {
      sessionDuration: +Sse.store('sessionStorage', this.durationKey) || 0,
      duration: this.active && this.durationTime ? Math.round((Date.now() - this.durationTime) / 1000) : 0
    }
  }

  addListener (names, fn) { return this._listen('add', names, fn) }

  removeListener (names, fn) { return this._listen('remove', names, fn) }

  /** POST {url}/connect/message/{path}.do; queued while disconnected; resolves with the Response. */
  send (path = '', body = {}, query = {}, headers = {}) {
    return this._call(id => fetch(this._url(`message/${path}.do`, Object.assign({ connectionId: id }, this._query(), query)),
      { method: 'POST', credentials: 'include', mode: 'cors', headers: Object.assign({}, Sse.JSON_HEADERS, headers), body: JSON.stringify(body) }))
  }

  /** POST {url}/connect/upload/{path}.do with a FormData body; queued like send. */
  upload (path = '', formData, query = {}, headers = {}) {
    if (!(formData instanceof FormData)) return Promise.reject(new TypeError('upload: formData must be a FormData'))
    return this._call(id => fetch(this._url(`upload/${path}.do`, Object.assign({ connectionId: id }, this._query(), query)),
      { method: 'POST', credentials: 'include', mode: 'cors', headers, body: formData }))
  }

  /** Joins channels, queued like send and again on reconnect; resolves with the connection's channels. */
  subscribe (names) { return this._chan(names, true) }

  /** Leaves channels, for good. */
  unsubscribe (names) { return this._chan(names, false) }

  /** Closes the current connection and connects to another base path. */
  switchURL (url) {
    this._close('switchURL')
    this.options.url = url
    this.lastQosId = this.position = null
    this.seen.clear()
    this.chans.clear()
    this.acks = []
    this.attempt = 0
    this.connect()
  }

  /** Closes for good: no connection, timer or listener is left; queued calls are rejected. */
  close (reason = 'close') {
    if (this.destroyed) return
    this._close(reason)
    this.destroyed = true
    clearInterval(this._tick)
    clearTimeout(this.ackTimer)
    this._docEvents.forEach(([n, f]) => document.removeEventListener(n, f, { passive: true }))
    this._winEvents.forEach(([n, f]) => window.removeEventListener(n, f))
    Sse.store('sessionStorage', this.durationKey, null)
    this.queue.splice(0).forEach(t => t.reject(new Error('sse: closed')))
    if (window.sse === this) window.sse = null
  }

  destroy () { this.close('destroy') }

  toString () { return `${this.connectionName}:${this.state}:${this.createTimestamp}` }

  _url (path, query) { return `${this.options.url}/connect/${path}?${new URLSearchParams(query)}` }

  // options.query, or what it returns when it is a function (a page's fresh token).
  _query () { const q = this.options.query; return (typeof q === 'function' ? q.call(this) : q) || {} }

  _listen (kind, names, fn) {
    const L = this.options.eventListeners
    const map = typeof names === 'string' ? { [names]: fn } : Array.isArray(names) ? Object.fromEntries(names.map(n => [n, L[n] || null])) : names || {}
    const list = Object.keys(map)
    list.forEach(n => {
      if (kind === 'add') {
        L[n] = map[n] || null
        if (this.es) this.es.addEventListener(n, this._ev)
      } else {
        delete L[n]
        if (this.es && !Sse.BUILTIN.includes(n)) this.es.removeEventListener(n, this._ev)
      }
    })
    return this._call(id => fetch(this._url(`${kind}Listener.do`, this._query()),
      { method: 'POST', credentials: 'include', mode: 'cors', headers: Sse.JSON_HEADERS, body: JSON.stringify({ connectionId: id, listener: list }) }))
  }

  // Rejects with the server's error and status; a 404 after a drop waits for the next connection.
  _chan (names, j) {
    const list = [].concat(names)
    const set = () => list.forEach(c => this.chans.set(c, j))
    if (!j) set()
    return this._call(async id => {
      const r = await fetch(this._url((j ? '' : 'un') + 'subscribe.do', this._query()),
        { method: 'POST', credentials: 'include', mode: 'cors', headers: Sse.JSON_HEADERS, body: JSON.stringify({ connectionId: id, channels: list }) })
      const b = Sse.parse(await r.text())
      if (r.status === 404 && id !== this.connectionId) throw new TypeError('sse: gone')
      if (!r.ok) throw Object.assign(new Error(b.error || r.status), { status: r.status })
      set()
      return (b.data || {}).channels
    })
  }

  // Upstream calls run one at a time, in call order, only while connected.
  _call (run) {
    if (this.destroyed) return Promise.reject(new Error('sse: closed'))
    return new Promise((resolve, reject) => {
      this.queue.push({ run, resolve, reject, tries: 0 })
      this._flush()
    })
  }

  async _flush () {
    if (this.flushing) return
    this.flushing = true
    try {
      while (this.queue.length && this.isActive()) {
        const t = this.queue.shift()
        const id = this.connectionId
        try {
          t.resolve(await t.run(id))
        } catch (e) {
          // A network failure: keep the call for the next connection (now if one came meanwhile).
          if (e instanceof TypeError && ++t.tries < 4 && !this.destroyed) {
            this.queue.unshift(t)
            if (id === this.connectionId) break
          } else t.reject(e)
        }
      }
    } finally {
      this.flushing = false
    }
  }

  _ack (id) {
    this.acks.push(id)
    if (!this.ackTimer) this.ackTimer = setTimeout(() => this._flushAcks(), this.options.ackDelay)
  }

  _flushAcks (keepalive) {
    clearTimeout(this.ackTimer)
    this.ackTimer = 0
    if (!this.acks.length || !this.isActive()) return
    const ids = this.acks.splice(0)
    fetch(this._url('ack.do', this._query()), {
      method: 'POST', credentials: 'include', mode: 'cors', keepalive, headers: Sse.JSON_HEADERS, body: JSON.stringify({ connectionId: this.connectionId, ids })
    }).then(r => { if (r.status >= 500) throw r }).catch(() => { if (!this.destroyed) this.acks.unshift(...ids) })
  }

  _handle (e) {
    if (e.target !== this.es) return
    const t = e.type
    const id = e.lastEventId
    if (t === 'connect-finish') {
      const r = this.connectResponse = Sse.parse(e.data)
      this.connectionId = String(r.connectionId || id)
      this.position = r.position || this.position
      this.reconnectDuration = r.reconnectTime
      this.connectionTimestamp = r.serverTime
      this.connectionName = r.name
      this.serverVersion = r.version
      this.state = Sse.STATE_OPEN
      this.connectedAt = Date.now()
      this.clientClose = null
      if (!this.active) Promise.resolve().then(() => { if (!this.destroyed && !this.active) { this.lastActiveTime = Date.now(); this._setActive(true) } })
    } else if (t === 'connect-close') {
      this._drop()
      const info = Sse.parse(e.data)
      this._closed(e, info, Sse.SERVER_TRIGGER_CLOSE, 'server-close')
      // Kicked or over a cap: stay closed until the tab is shown again (a reconnect would close another
      // connection of the user). Else reconnect with backoff, with the query and cookies of then.
      if (!Sse.STAY_CLOSED.includes(info.reason)) this._retry()
      return
    } else if (t === 'sse-set-duration') {
      Sse.store('sessionStorage', this.durationKey, Sse.parse(e.data).duration || '0')
    } else if (/^p\./.test(id)) {
      this.position = id
    } else if (id && id !== this.connectionId && !/^\d+$/.test(id)) {
      // A QoS message: always ack (the server may not have our earlier ack), deliver once.
      this.lastQosId = id
      this._ack(id)
      if (this.seen.has(id)) return
      this.seen.add(id)
      if (this.seen.size > Sse.SEEN_MAX) this.seen.delete(this.seen.values().next().value)
    }
    this._emit(e)
    if (t === 'connect-finish') {
      this._flush()
      this._flushAcks()
    }
  }

  _emit (e, info) {
    const L = this.options.eventListeners
    const f = L[e.type]
    if (typeof f === 'function') Sse.safe(() => f.call(this, e, info))
    if (this.options.useWindowEventBus && e.type in L) this._dispatchEvent(e)
  }

  _dispatchEvent (e) {
    e.url = this.options.url
    this.options.intercepts.forEach(f => Sse.safe(() => f.call(this, e)))
    const n = new MessageEvent(e.type, { data: e.data, origin: e.origin, lastEventId: e.lastEventId })
    n.url = e.url
    window.dispatchEvent(n)
  }

  _closed (e, info, who, reason) {
    e.whoTriggerClose = who
    e.closeReason = reason
    this.closeResponse = info
    this._emit(e, info)
  }

  // Client-side close: beacon the server, close the stream, keep queued calls.
  _close (reason) {
    clearTimeout(this.timer)
    this.timer = 0
    const id = this.connectionId
    if (id) {
      this._flushAcks(true)
      if (this.active) this._setActive(false)
      this.clientClose = { connectionId: id, reason }
      const d = this.getDuration()
      const b = new URLSearchParams({ clientId: this.clientId, connectionId: id, reason, sseVersion: Sse.version, duration: d.duration, sessionDuration: d.sessionDuration })
      const u = `${this.options.url}/connect/disconnect.do`
      if (!(navigator.sendBeacon && navigator.sendBeacon(u, b))) fetch(u, { method: 'POST', body: b, credentials: 'include', keepalive: true }).catch(() => {})
    }
    this._drop()
    if (id) this._closed(new MessageEvent('connect-close', { data: JSON.stringify(this.clientClose) }), this.clientClose, Sse.CLIENT_TRIGGER_CLOSE, reason)
  }

  _drop () {
    if (this.es) this.es.close()
    this.es = this.connectionId = null
    this.state = Sse.STATE_CLOSED
  }

  // Reconnects after a jittered, growing delay of at least minDelay ms (a Retry-After).
  _retry (minDelay = 0) {
    const o = this.options
    if (this.destroyed || this.timer) return
    // A connection that lived long restarts the backoff; quick failures keep growing it.
    if (this.connectedAt && Date.now() - this.connectedAt > o.maxReconnectTime) this.attempt = 0
    this.connectedAt = 0
    const d = Math.min(o.maxReconnectTime, (o.reconnectTime || this.reconnectDuration || Sse.DEFAULT_RECONNECT_TIME) * 2 ** Math.min(this.attempt++, 16))
    this.timer = setTimeout(() => { this.timer = 0; this.connect() }, Math.max(minDelay, d / 2 + Math.random() * d / 2))
  }

  // Asks the refused connect URL again to learn the status and error, reports them as connect-error,
  // then stays closed (401, 403) or retries, no sooner than a Retry-After.
  async _probe (url) {
    const n = this.probes
    const info = { status: 0, error: '', retryAfter: null }
    try {
      const r = await fetch(url, { credentials: this.options.withCredentials ? 'include' : 'same-origin', headers: { accept: 'text/event-stream' } })
      if (r.ok) {
        // Accepted this time: drop the probe, connect for real.
        r.body && r.body.cancel().catch(() => {})
        if (n === this.probes && !this.destroyed) this._retry()
        return
      }
      info.status = r.status
      const s = parseInt(r.headers.get('retry-after'), 10)
      if (s >= 0) info.retryAfter = s
      const text = await r.text()
      info.error = Sse.parse(text).error || text.slice(0, 500)
    } catch (e) {
      info.error = String(e && e.message || e)
    }
    // A connect() or close() meanwhile makes this probe stale.
    if (n !== this.probes || this.destroyed || this.es) return
    this.connectError = info
    const e = new MessageEvent('connect-error', { data: JSON.stringify(info) })
    const f = this.options.eventListeners['connect-error']
    if (typeof f === 'function') Sse.safe(() => f.call(this, e, info))
    if (this.options.useWindowEventBus) this._dispatchEvent(e)
    if (!Sse.STOP_STATUS.includes(info.status)) this._retry((info.retryAfter || 0) * 1000)
  }

  _setActive (a) {
    const now = Date.now()
    const old = this.active
    this.active = a
    if (a) this.durationTime = now
    else {
      const s = (+Sse.store('sessionStorage', this.durationKey) || 0) + Math.round((now - (this.durationTime || now)) / 1000)
      Sse.store('sessionStorage', this.durationKey, s)
      this.durationTime = null
    }
    const e = new MessageEvent('sse-change-active', { data: { oldActive: old, newActive: a, duration: this.getDuration() } })
    const f = this.options.eventListeners['sse-change-active']
    if (typeof f === 'function') Sse.safe(() => f.call(this, e))
    window.dispatchEvent(e)
  }

  static hidden () { return document.visibilityState === 'hidden' }

  static safe (f) { try { f() } catch (e) { console.error(e) } }

  static parse (s) { try { return JSON.parse(s) || {} } catch (e) { return {} } }

  static uuid () { return 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'.replace(/x/g, () => (Math.random() * 16 | 0).toString(16)) }

  static store (kind, k, v) {
    try {
      const s = window[kind]
      if (v === undefined) return s.getItem(k)
      v === null ? s.removeItem(k) : s.setItem(k, v)
    } catch (e) {}
  }
}
Sse.version = '2.0.0'
Sse.IMPORT_MODULE_TIMESTAMP = Date.now()
Sse.DEFAULT_RECONNECT_TIME = 5000
Sse.STATE_CONNECTING = 0
Sse.STATE_OPEN = 1
Sse.STATE_CLOSED = 2
Sse.SERVER_TRIGGER_CLOSE = 'server'
Sse.CLIENT_TRIGGER_CLOSE = 'client'
Sse.SEEN_MAX = 1000
Sse.STAY_CLOSED = ['kicked', 'client-limit', 'user-limit', 'client-close']
Sse.STOP_STATUS = [401, 403]
Sse.BUILTIN = ['connect-finish', 'connect-close', 'sse-set-duration']
Sse.JSON_HEADERS = { 'content-type': 'application/json;charset=UTF-8' }
Sse.DEFAULT_OPTIONS = {
  url: '/api/sse',
  keepaliveTime: 900000,
  eventListeners: {},
  intercepts: [],
  query: {},
  withCredentials: true,
  clientId: null,
  accessTimestamp: null,
  reconnectTime: null,
  maxReconnectTime: 30000,
  ackDelay: 100,
  useWindowEventBus: true,
  leaveTimeout: 5000,
  leaveCheckInterval: 500,
  sseDurationKey: ''
}
// The seed's pages use the global; keep it the first class loaded (classic or module).
if (typeof window !== 'undefined' && !window.Sse) window.Sse = Sse
export default Sse
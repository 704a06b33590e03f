// Helpers for the real-browser tests: build and run pushd, drive chromium, poll with deadlines.
import { before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { Contract } from './contract.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const workDir = mkdtempSync(join(tmpdir(), 'pushd-browser-'))
export const USER = 'u1'

let binary = null

/** Builds ./cmd/pushd once per test process (or uses $PUSHD_BIN). */
export function pushdBinary () {
  if (binary) return binary
  if (process.env.PUSHD_BIN) return (binary = process.env.PUSHD_BIN)
  const out = join(workDir, 'pushd')
  execFileSync('go', ['build', '-o', out, './cmd/pushd'], { cwd: repoRoot, stdio: 'inherit' })
  return (binary = out)
}

/** A free TCP port on 127.0.0.1. */
export function freePort () {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Polls fn until it returns a truthy value; throws with the last value or error after timeoutMs. */
export async function eventually (fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      last = await fn()
      if (last) return last
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.stack : JSON.stringify(last)}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

export const CONFIG = `
node_id: browser-test
admin: {token: admin-secret}
qos:
  redeliver_after: 2s
apps:
  - name: demo
    path: /sse/demo
    auth: {mode: demo}
    api_keys: [demo-key]
    enable_json_endpoints: true
    user_history: {size: 100, ttl: 10m}
    channels:
      namespaces:
        - {prefix: "tiny.", join: public, history: {size: 2, ttl: 10m}}
        - {match: "*", join: public, history: {size: 100, ttl: 10m}}
  - name: other
    path: /sse/other
    auth: {mode: demo}
    api_keys: [other-key]
`
export const API_KEYS = { demo: 'demo-key', other: 'other-key', jwt: 'jwt-key' }
export const ADMIN_TOKEN = 'admin-secret'

/** The server API's contract; every answer of Pushd.api is checked against it (contract.js). */
export const contract = new Contract(repoRoot)

/** The operations the calls of this test process went through, "METHOD template" → count. */
export const contractCalls = new Map()

/**
 * A pushd process on a fixed port that can be stopped and started again on the same port; without
 * configFile it runs the embedded demo (`pushd` without --config, moved to the port by PUSHD_LISTEN).
 */
export class Pushd {
  constructor (port, configFile) {
    this.port = port
    this.configFile = configFile
    this.origin = `http://127.0.0.1:${port}`
    this.proc = null
    this.log = ''
  }

  /** Starts pushd with the test config, or with config(port) when given. */
  static async start (config = () => CONFIG) {
    const port = await freePort()
    const configFile = join(workDir, `pushd-${port}.yaml`)
    writeFileSync(configFile, config(port))
    const p = new Pushd(port, configFile)
    await p.start()
    return p
  }

  /** Starts the embedded demo: app demo with demo auth, API key demo-key, admin token demo-admin, the demo page. */
  static async startEmbedded () {
    const p = new Pushd(await freePort(), null)
    await p.start()
    return p
  }

  async start () {
    const proc = this.proc = spawn(pushdBinary(), this.configFile ? ['--config', this.configFile] : [], {
      env: { ...process.env, PUSHD_LISTEN: `127.0.0.1:${this.port}`, PUSHD_LOG_LEVEL: process.env.PUSHD_LOG_LEVEL || 'warn' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const keep = d => { this.log = (this.log + d).slice(-20000) }
    proc.stdout.on('data', keep)
    proc.stderr.on('data', keep)
    proc.exited = new Promise(resolve => proc.on('exit', resolve))
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`pushd exited with ${proc.exitCode}: ${this.log}`)
      const r = await fetch(`${this.origin}/healthz`)
      return r.ok
    }, { timeoutMs: 15000, what: `pushd on ${this.origin}` })
  }

  /** Kills the process (SIGKILL by default: a crash) and waits for it to exit. */
  async kill (signal = 'SIGKILL') {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode) return
    this.proc.kill(signal)
    await this.proc.exited
  }

  async stop () {
    await this.kill('SIGTERM')
    if (this.configFile) rmSync(this.configFile, { force: true })
  }

  /**
   * Calls the server API of an app; returns {status, body}. The exchange is checked against the
   * contract (api/openapi.yaml): an answer it does not document fails the call.
   */
  async api (method, path, body, app = 'demo') {
    const url = new URL(`${this.origin}/api/v1/apps/${app}${path}`)
    const r = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${API_KEYS[app]}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await r.text()
    const op = contract.check({ method, path: url.pathname, requestBody: body, status: r.status, contentType: r.headers.get('content-type'), body: text })
    contractCalls.set(op, (contractCalls.get(op) || 0) + 1)
    let json
    try { json = JSON.parse(text) } catch { json = text }
    return { status: r.status, body: json }
  }

  async connections (app = 'demo') {
    const r = await this.api('GET', '/connections?pageNum=1&pageSize=100', undefined, app)
    if (r.status !== 200) throw new Error(`GET connections: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body
  }

  /** Sends an event to the test user; returns the API answer body. */
  async push (event, data, extra = {}, app = 'demo') {
    const r = await this.api('POST', '/send', { to: { userIds: [USER] }, event, data, ...extra }, app)
    if (r.status !== 200) throw new Error(`POST send: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body
  }
}

const LAUNCH = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
}

export function launchBrowser () { return chromium.launch(LAUNCH) }

let browser = null

/** The chromium of useBrowser, for tests that open their own contexts. */
export function currentBrowser () { return browser }

/** Registers the test file's hooks: pushd built and chromium started before its tests, both cleaned up after. */
export function useBrowser () {
  before(async () => {
    pushdBinary()
    browser = await launchBrowser()
  })
  after(async () => {
    await browser?.close()
    rmSync(workDir, { recursive: true, force: true })
  })
}

/**
 * Runs body with a fresh pushd (started with config, see Pushd.start) and a fresh page (and the
 * browser, for more contexts); fails on page errors and dumps the server log when the body fails.
 */
export async function withSetup (t, body, config) {
  const pushd = await Pushd.start(config)
  const { page, context } = await openPage(browser, pushd)
  try {
    await body({ pushd, page, browser })
    assert.deepEqual(page.errors.filter(e => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)), [], 'page errors')
  } catch (e) {
    t.diagnostic(`pushd log:\n${pushd.log}`)
    throw e
  } finally {
    await context.close()
    await pushd.stop()
  }
}

/**
 * Opens a page on the pushd origin, or on origin (e.g. http://localhost:port, another origin of the
 * same server), as an HTML document written over /healthz, logged in as USER through the demo cookie
 * (set for the pushd origin), with a recorder of events and instrumentation of timers, listeners and
 * EventSources installed before any client code runs.
 */
export async function openPage (browser, pushd, origin = pushd.origin) {
  const context = await browser.newContext()
  await context.addCookies([{ name: 'pushd_demo_user', value: USER, url: pushd.origin }])
  const page = await context.newPage()
  page.errors = []
  page.on('pageerror', e => page.errors.push(String(e)))
  page.on('console', m => { if (m.type() === 'error') page.errors.push(m.text()) })
  await page.goto(`${origin}/healthz`)
  await page.setContent('<!doctype html><html><head><title>sse.js test</title></head><body></body></html>')
  await page.evaluate(instrument)
  return { page, context }
}

// Runs in the page: records events and tracks timers, intervals, window/document listeners and
// EventSources so a test can prove destroy() leaves nothing behind.
function instrument () {
  const w = window
  w.__events = []
  w.__vis = 'visible'
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => w.__vis })
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => w.__vis === 'hidden' })
  w.__setVisible = v => { w.__vis = v ? 'visible' : 'hidden'; document.dispatchEvent(new Event('visibilitychange')) }
  // Only what the client code registers counts (its stack has the script's URL under /sse/);
  // playwright registers window listeners of its own.
  const fromClient = () => /\/sse\//.test(new Error().stack)
  const timeouts = w.__timeouts = new Set()
  const delays = w.__delays = new Map() // the client's pending timeouts: id → ms
  const intervals = w.__intervals = new Set()
  const { setTimeout: st, clearTimeout: ct, setInterval: si, clearInterval: ci } = w
  w.setTimeout = (f, ms, ...a) => {
    const id = st(() => { timeouts.delete(id); delays.delete(id); typeof f === 'function' ? f(...a) : eval(f) }, ms)
    if (fromClient()) { timeouts.add(id); delays.set(id, ms) }
    return id
  }
  w.clearTimeout = id => { timeouts.delete(id); delays.delete(id); ct(id) }
  w.setInterval = (f, ms, ...a) => { const id = si(f, ms, ...a); if (fromClient()) intervals.add(id); return id }
  w.clearInterval = id => { intervals.delete(id); ci(id) }
  const listeners = w.__listeners = new Map()
  for (const [name, target] of [['window', w], ['document', document]]) {
    const add = target.addEventListener.bind(target)
    const remove = target.removeEventListener.bind(target)
    target.addEventListener = (type, fn, opt) => {
      if (fromClient()) listeners.set(`${name}:${type}`, (listeners.get(`${name}:${type}`) || new Set()).add(fn))
      return add(type, fn, opt)
    }
    target.removeEventListener = (type, fn, opt) => {
      listeners.get(`${name}:${type}`)?.delete(fn)
      return remove(type, fn, opt)
    }
  }
  w.__listenerCount = () => [...listeners.values()].reduce((n, s) => n + s.size, 0)
  const Native = w.EventSource
  w.__sources = []
  w.__countRaw = []
  w.__raw = []
  w.EventSource = class extends Native {
    constructor (url, init) {
      super(url, init)
      w.__sources.push(this)
      this.createdAt = performance.now()
      this.addEventListener('error', () => { this.failedAt = this.failedAt || performance.now() })
      // Raw arrivals of the names in __countRaw, before the client's duplicate suppression.
      for (const n of w.__countRaw) this.addEventListener(n, e => w.__raw.push({ name: n, id: e.lastEventId }))
    }
  }
  w.__openSources = () => w.__sources.filter(s => s.readyState !== 2).length
  // record(name) makes a listener that logs what it got; bus(name) logs the window event bus.
  w.__record = name => function (e, info) {
    w.__events.push({ via: 'listener', name, type: e.type, data: e.data, id: e.lastEventId, who: e.whoTriggerClose, reason: e.closeReason, info: info || null })
  }
  w.__bus = name => window.__nativeAdd(name, e => w.__events.push({ via: 'bus', name, type: e.type, data: e.data, id: e.lastEventId, url: e.url }))
  w.__nativeAdd = EventTarget.prototype.addEventListener.bind(w)
  w.__got = (name, via = 'listener') => w.__events.filter(e => e.name === name && e.via === via)
}

/**
 * Imports the client module from url and creates window.client with listeners recording into
 * window.__events (and the window bus for the same names).
 */
export async function createClient (page, { module = '/sse/demo', url = '/sse/demo', listeners = [], options = {} } = {}) {
  await page.evaluate(async ({ module, url, listeners, options }) => {
    const { default: Sse } = await import(module)
    window.SseClass = Sse
    const eventListeners = {}
    for (const n of listeners) { eventListeners[n] = window.__record(n); window.__bus(n) }
    window.client = new Sse({ url, eventListeners, reconnectTime: 200, maxReconnectTime: 1000, ...options })
  }, { module, url, listeners, options })
}

/** Waits until the page's client has received connect-finish. */
export function waitActive (page, timeout = 15000) {
  return page.waitForFunction(() => window.client && window.client.isActive(), null, { timeout, polling: 50 })
}

/** Waits until the page's listener for name has received at least n events; returns them. */
export async function waitEvents (page, name, n = 1, via = 'listener', timeout = 10000) {
  await page.waitForFunction(([name, n, via]) => window.__got(name, via).length >= n, [name, n, via], { timeout, polling: 50 })
  return page.evaluate(([name, via]) => window.__got(name, via), [name, via])
}

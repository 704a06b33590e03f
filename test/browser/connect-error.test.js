// Real-browser tests of how static/sse.js reports a refused connect (connect-error) and of the
// README's browser snippet, run as README.md has it: its query must reach send and upload too.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { useBrowser, withSetup, createClient, waitActive, waitEvents, eventually, USER, repoRoot } from './harness.js'

useBrowser()

/** Connect requests of the page: the EventSource's and the client's status probes. */
function connectRequests (page) {
  const list = []
  page.on('request', r => { if (new URL(r.url()).pathname === '/sse/demo/connect') list.push(r.url()) })
  return list
}

test('a 401 at connect is reported with the server\'s error and not retried until connect()', t => withSetup(t, async ({ pushd, page }) => {
  await page.context().clearCookies() // demo auth: no userId and no cookie is no identity
  const requests = connectRequests(page)
  await page.evaluate(() => window.__bus('connect-error'))
  await createClient(page, { listeners: ['connect-error'] })
  const [e] = await waitEvents(page, 'connect-error')
  assert.equal(e.info.status, 401)
  assert.match(e.info.error, /no user id/)
  assert.deepEqual(JSON.parse(e.data), e.info)
  const [bus] = await waitEvents(page, 'connect-error', 1, 'bus')
  assert.equal(JSON.parse(bus.data).status, 401)
  assert.equal(bus.url, '/sse/demo')

  // Nothing is scheduled: no reconnect timer, no stream.
  const state = await page.evaluate(() => ({ timer: window.client.timer, es: !!window.client.es, pending: [...window.__delays.values()], error: window.client.connectError }))
  assert.deepEqual(state, { timer: 0, es: false, pending: [], error: e.info })
  assert.equal(requests.length, 2, `the stream and one probe: ${requests}`)
  assert.equal(requests[0], requests[1], 'the probe asks the refused URL')
  assert.equal((await pushd.connections()).total, 0)

  // With an identity, connect() tries again and succeeds.
  await page.context().addCookies([{ name: 'pushd_demo_user', value: USER, url: pushd.origin }])
  await page.evaluate(() => window.client.connect())
  await waitActive(page)
  assert.equal((await pushd.connections()).list[0].accessUserId, USER)
}))

test('a 503 with Retry-After is reported and the reconnect waits at least that long', t => withSetup(t, async ({ pushd, page }) => {
  // The app takes one connection; a stream held from here fills it.
  const held = new AbortController()
  const r = await fetch(`${pushd.origin}/sse/demo/connect?userId=holder`, { signal: held.signal })
  assert.equal(r.status, 200)
  try {
    await createClient(page, { listeners: ['connect-error'] })
    const [e] = await waitEvents(page, 'connect-error')
    assert.equal(e.info.status, 503)
    assert.equal(e.info.retryAfter, 10)
    assert.ok(e.info.error, 'the server\'s error text')
    const pending = await page.evaluate(() => ({ timer: window.client.timer, delay: window.__delays.get(window.client.timer) }))
    assert.ok(pending.timer, 'a reconnect is scheduled')
    assert.ok(pending.delay >= 10000, `reconnect after ${pending.delay} ms, before the Retry-After of 10 s`)
  } finally {
    held.abort()
  }
  await eventually(async () => (await pushd.connections()).total === 0, { what: 'the held stream to close' })
  await page.evaluate(() => window.client.connect())
  await waitActive(page)
}, port => `
node_id: browser-test
apps:
  - name: demo
    path: /sse/demo
    auth: {mode: demo}
    api_keys: [demo-key]
    enable_json_endpoints: true
    max_connections: 1
`))

/**
 * Answers every connect of the page (the EventSource's and the client's probes) with status and the
 * server's JSON error, as a server refusing would; returns the list of answered URLs.
 */
async function refuseConnects (page, status, error, headers = {}) {
  const hits = []
  await page.route(u => new URL(u).pathname === '/sse/demo/connect', route => {
    hits.push(route.request().url())
    return route.fulfill({ status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ error }) })
  })
  return hits
}

/** Records the delay of the reconnect the client schedules after each connect-error. */
function recordRetryDelays (page) {
  return page.evaluate(() => {
    window.__retryDelays = []
    // The bus event comes just before the client schedules its retry, in the same task.
    window.__nativeAdd('connect-error', () => queueMicrotask(() => window.__retryDelays.push(window.__delays.get(window.client.timer) ?? null)))
  })
}

test('a 403 at connect is reported and stops the retries until connect() is called again', t => withSetup(t, async ({ pushd, page }) => {
  const hits = await refuseConnects(page, 403, 'forbidden: not your tenant')
  await recordRetryDelays(page)
  await createClient(page, { listeners: ['connect-error'] })
  const [e] = await waitEvents(page, 'connect-error')
  assert.equal(e.info.status, 403)
  assert.equal(e.info.error, 'forbidden: not your tenant')
  const state = await page.evaluate(() => ({ timer: window.client.timer, es: !!window.client.es, pending: [...window.__delays.values()], delays: window.__retryDelays }))
  assert.deepEqual(state, { timer: 0, es: false, pending: [], delays: [null] })
  const before = hits.length
  assert.equal(before, 2, `the stream and one probe: ${hits}`)

  // connect() tries again: refused again, reported again, still no retry of its own.
  await page.evaluate(() => window.client.connect())
  await waitEvents(page, 'connect-error', 2)
  assert.equal(hits.length, before + 2)
  assert.equal(await page.evaluate(() => window.client.timer), 0)

  // Once the server accepts, connect() connects.
  await page.unrouteAll()
  await page.evaluate(() => window.client.connect())
  await waitActive(page)
  assert.equal((await pushd.connections()).total, 1)
}))

for (const status of [429, 503]) {
  test(`a ${status} without Retry-After is reported and retried with growing delays`, t => withSetup(t, async ({ page }) => {
    const hits = await refuseConnects(page, status, 'busy, try later')
    await recordRetryDelays(page)
    await createClient(page, { listeners: ['connect-error'], options: { reconnectTime: 100, maxReconnectTime: 60000 } })
    const events = await waitEvents(page, 'connect-error', 4)
    for (const e of events) {
      assert.equal(e.info.status, status)
      assert.equal(e.info.retryAfter, null)
      assert.equal(e.info.error, 'busy, try later')
    }
    const delays = (await page.evaluate(() => window.__retryDelays)).slice(0, 4)
    assert.equal(delays.length, 4, `a reconnect scheduled after each refusal: ${delays}`)
    for (let i = 1; i < delays.length; i++) assert.ok(delays[i] >= delays[i - 1], `delays grow: ${delays}`)
    // reconnectTime 100 ms doubled per attempt, each delay in [d/2, d]: at most 100 ms, then at least 400.
    assert.ok(delays[0] <= 100 && delays[3] >= 400, `backoff from ~100 ms doubling: ${delays}`)
    assert.ok(hits.length >= 8, `each attempt is a stream and a probe: ${hits.length}`)
    await page.evaluate(() => window.client.destroy())
  }))
}

/**
 * The first ```js block after the heading of file (relative to the repository root), as written.
 */
function markdownBlock (file, heading, lang = 'js') {
  const text = readFileSync(join(repoRoot, file), 'utf8')
  const at = text.indexOf(`\n${heading}\n`)
  if (at < 0) throw new Error(`${file}: no heading ${heading}`)
  const m = text.slice(at).match(new RegExp('\\n```' + lang + '\\n([\\s\\S]*?)\\n```'))
  if (!m) throw new Error(`${file}: no ${lang} block after ${heading}`)
  return m[1]
}

test('the README\'s browser snippet, as written: the constructor\'s query authenticates send and upload too', t => withSetup(t, async ({ pushd, page }) => {
  await page.context().clearCookies() // the snippet's query is the only identity
  const snippet = markdownBlock('README.md', '## In the browser')
  assert.match(snippet, /sseEventListener\('\/sse\/demo'/)
  // The page the snippet expects: a form with a file input, a file picked.
  await page.setContent('<!doctype html><form><input type=file name=avatar></form>')
  await page.evaluate(() => {
    window.__calls = []
    const orig = window.fetch
    window.fetch = (...a) => orig(...a).then(r => { window.__calls.push([new URL(a[0], location.href).pathname, r.status]); return r })
  })
  await page.setInputFiles('input[type=file]', { name: 'me.png', mimeType: 'image/png', buffer: Buffer.from('png bytes') })
  await page.evaluate(`(async () => {\n${snippet}\nwindow.conn = conn\n})()`)
  const calls = await page.evaluate(() => window.__calls.filter(([p]) => /\/(message|upload)\//.test(p)))
  assert.deepEqual(calls, [['/sse/demo/connect/message/order.do', 200], ['/sse/demo/connect/upload/avatar.do', 200]])
  await eventually(async () => {
    const c = (await pushd.connections()).list[0]
    return c && c.accessUserId === '42' && c.requestMessageCount === 1 && c.requestUploadCount === 1
  }, { what: 'the send and the upload counted on the connection of user 42' })

  // The same connection: the acknowledgment of a send, a call's own query added to the constructor's,
  // and the listeners the snippet changed.
  const got = await page.evaluate(async () => {
    const conn = window.conn
    const ack = new Promise(resolve => conn.addListener('server-ack', e => resolve(JSON.parse(e.data))))
    const send = await conn.send('order', { item: 'book' }, { note: 'x' })
    return { send: [send.status, await send.json()], ack: await ack, id: conn.connectionId }
  })
  assert.equal(got.send[0], 200, JSON.stringify(got.send))
  assert.deepEqual(got.send[1].data.body, { item: 'book' })
  assert.equal(got.send[1].data.connectionId, got.id)
  assert.equal(got.send[1].data.query.note, 'x')
  assert.equal(got.send[1].data.query.userId, '42')
  assert.deepEqual(got.ack.body, { item: 'book' })
}))

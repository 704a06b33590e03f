// Real-browser tests of how static/sse.js reports a refused connect (connect-error) and of the
// README's browser snippet, whose query must reach send and upload too.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useBrowser, withSetup, createClient, waitActive, waitEvents, eventually, USER } from './harness.js'

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

test('the README\'s browser snippet: the constructor\'s query authenticates send and upload too', t => withSetup(t, async ({ pushd, page }) => {
  await page.context().clearCookies()
  const got = await page.evaluate(async () => {
    // As in README.md "In the browser".
    function sseEventListener (url, eventListeners, query) {
      return import(url + '?' + new URLSearchParams(query)).then(m => new m.default({ url, eventListeners, query }))
    }
    let acked
    const ack = new Promise(resolve => { acked = resolve })
    const conn = await sseEventListener('/sse/demo', { 'server-ack': e => acked(JSON.parse(e.data)) }, { userId: '42', tenantId: 't1' })
    const send = await conn.send('order', { item: 'book' })
    const form = new FormData()
    form.set('avatar', new Blob(['png bytes'], { type: 'image/png' }), 'me.png')
    const upload = await conn.upload('avatar', form)
    // A call's own query adds to the constructor's.
    const extra = await conn.send('order', {}, { note: 'x' })
    return { send: [send.status, await send.json()], upload: [upload.status, await upload.text()], extra: [extra.status, await extra.json()], ack: await ack, id: conn.connectionId }
  })
  assert.equal(got.send[0], 200, JSON.stringify(got.send))
  assert.deepEqual(got.send[1].data.body, { item: 'book' })
  assert.equal(got.send[1].data.connectionId, got.id)
  assert.equal(got.upload[0], 200, got.upload[1])
  assert.match(got.upload[1], /me\.png/)
  assert.equal(got.extra[0], 200)
  assert.equal(got.extra[1].data.query.note, 'x')
  assert.equal(got.extra[1].data.query.userId, '42')
  assert.deepEqual(got.ack.body, { item: 'book' })
  const conns = await pushd.connections()
  assert.equal(conns.list[0].accessUserId, '42')
  assert.equal(conns.list[0].requestMessageCount, 2)
  assert.equal(conns.list[0].requestUploadCount, 1)
}))

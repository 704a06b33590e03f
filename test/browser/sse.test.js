// Real-browser tests of static/sse.js against real pushd processes (node --test).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  USER, repoRoot, useBrowser, withSetup, createClient, waitActive, waitEvents, eventually
} from './harness.js'

useBrowser()

const connectionIds = async (pushd, app = 'demo') => (await pushd.connections(app)).list.map(c => c.id)

test('module import gives a working client; a pushed event reaches the listener and the window bus', t => withSetup(t, async ({ pushd, page }) => {
  const connectUrls = []
  page.on('request', r => { if (r.url().includes('/connect?')) connectUrls.push(r.url()) })
  await createClient(page, { listeners: ['server-push'], options: { query: { channel: 'c1' } } })
  await waitActive(page)

  const { id, name } = await page.evaluate(() => ({ id: window.client.connectionId, name: window.client.connectionName }))
  assert.equal(name, 'demo')
  const conns = await pushd.connections()
  assert.equal(conns.total, 1)
  assert.equal(conns.list[0].id, id)
  assert.equal(conns.list[0].accessUserId, USER)
  assert.ok(conns.list[0].listeners.includes('server-push'), `listeners: ${conns.list[0].listeners}`)

  // The connect request carries the seed's parameters in the seed's order, then ack=1 and the query.
  const params = [...new URL(connectUrls[0]).searchParams.keys()]
  assert.deepEqual(params.slice(0, 12), ['sessionDuration', 'keepaliveTime', 'clientId', 'clientVersion', 'screen', 'accessTime',
    'listeners', 'useWindowEventBus', 'locationHref', 'clientImportModuleTime', 'clientInstanceTime', 'clientInstanceId'])
  assert.ok(params.indexOf('ack') > 11 && params.indexOf('ack') < params.indexOf('channel'), `params: ${params}`)

  const sent = await pushd.push('server-push', { hello: 'world', n: 1 })
  assert.equal(sent.delivered, 1)
  const got = await waitEvents(page, 'server-push')
  assert.deepEqual(JSON.parse(got[0].data), { hello: 'world', n: 1 })
  const bus = await waitEvents(page, 'server-push', 1, 'bus')
  assert.deepEqual(JSON.parse(bus[0].data), { hello: 'world', n: 1 })
  assert.equal(bus[0].url, '/sse/demo')

  // A multi-line string arrives intact.
  await pushd.push('server-push', 'line one\nline two')
  const two = await waitEvents(page, 'server-push', 2)
  assert.equal(two[1].data, 'line one\nline two')
}))

test('hiding the tab closes the connection on the server within 2 s; showing it reconnects', t => withSetup(t, async ({ pushd, page }) => {
  await createClient(page, { listeners: ['server-push', 'connect-close'] })
  await waitActive(page)
  const [first] = await connectionIds(pushd)
  assert.ok(first)

  const beacons = []
  page.on('request', r => { if (r.url().endsWith('/sse/demo/connect/disconnect.do')) beacons.push(Object.fromEntries(new URLSearchParams(r.postData() || ''))) })
  await page.evaluate(() => window.__setVisible(false))
  const hiddenAt = Date.now()
  await eventually(async () => (await pushd.connections()).total === 0, { timeoutMs: 2000, intervalMs: 25, what: 'the server to drop the hidden tab\'s connection' })
  t.diagnostic(`server dropped the connection ${Date.now() - hiddenAt} ms after visibilitychange`)
  assert.equal(await page.evaluate(() => window.client.isActive()), false)
  const closes = await waitEvents(page, 'connect-close')
  assert.equal(closes[0].who, 'client')
  assert.equal(closes[0].reason, 'visibilitychange')
  assert.equal(closes[0].info.connectionId, first)
  // The disconnect beacon carries the seed's form fields.
  const beacon = await eventually(() => beacons[0], { what: 'the disconnect.do beacon' })
  assert.deepEqual(Object.keys(beacon).sort(), ['clientId', 'connectionId', 'duration', 'reason', 'sessionDuration', 'sseVersion'])
  assert.equal(beacon.connectionId, first)
  assert.equal(beacon.reason, 'visibilitychange')

  await page.evaluate(() => window.__setVisible(true))
  await waitActive(page)
  const ids = await eventually(async () => { const l = await connectionIds(pushd); return l.length === 1 && l }, { what: 'one connection after showing the tab' })
  assert.notEqual(ids[0], first)
  await pushd.push('server-push', { after: 'show' })
  const got = await waitEvents(page, 'server-push')
  assert.deepEqual(JSON.parse(got[0].data), { after: 'show' })
}))

test('after pushd is killed and restarted on the same port the page reconnects by itself', t => withSetup(t, async ({ pushd, page }) => {
  await createClient(page, { listeners: ['server-push'] })
  await waitActive(page)
  const before = await page.evaluate(() => window.client.connectionId)

  const orig = await page.evaluate(() => window.__sources.indexOf(window.client.es))
  assert.ok(orig >= 0)
  await pushd.kill()
  await page.waitForFunction(() => !window.client.isActive(), null, { timeout: 10000, polling: 50 })
  // While the server is down the client retries with jittered exponential backoff: the delay between
  // a failure and attempt k is in [d/2, d], d = min(maxReconnectTime, reconnectTime * 2^k) (200 ms, 1000 ms here).
  await page.waitForFunction(o => window.__sources.length >= o + 6, orig, { timeout: 15000, polling: 50 })
  const delays = await page.evaluate(o => window.__sources.slice(o + 1, o + 6).map((s, k) => s.createdAt - window.__sources[o + k].failedAt), orig)
  t.diagnostic(`reconnect delays while down (ms): ${delays.map(Math.round).join(', ')}`)
  delays.forEach((g, k) => {
    const d = Math.min(1000, 200 * 2 ** k)
    assert.ok(g >= d / 2 - 5, `attempt ${k}: waited ${g} ms, less than ${d / 2}`)
    assert.ok(g <= d + 1000, `attempt ${k}: waited ${g} ms, far more than ${d}`)
  })
  await pushd.start()
  await waitActive(page, 20000)
  const afterId = await page.evaluate(() => window.client.connectionId)
  assert.notEqual(afterId, before)
  assert.deepEqual(await connectionIds(pushd), [afterId])

  await pushd.push('server-push', { n: 'after restart' })
  const got = await waitEvents(page, 'server-push')
  assert.deepEqual(JSON.parse(got[0].data), { n: 'after restart' })
}))

test('send and upload made while pushd is down are delivered once, in order, after it returns', t => withSetup(t, async ({ pushd, page }) => {
  await createClient(page, { listeners: ['server-ack'] })
  await waitActive(page)
  await pushd.kill()
  await page.waitForFunction(() => !window.client.isActive(), null, { timeout: 10000, polling: 50 })

  const fileText = 'hello from a real file\n'.repeat(100)
  await page.evaluate(fileText => {
    const c = window.client
    window.__done = []
    const settle = (label, p) => p.then(async r => window.__done.push({ label, status: r.status, body: await r.json() }),
      e => window.__done.push({ label, error: String(e) }))
    const fd = new FormData()
    fd.append('note', 'queued upload')
    fd.append('file', new File([fileText], 'hello.txt', { type: 'text/plain' }))
    settle('first', c.send('first', { n: 1 }, { q: 'a' }))
    settle('upload', c.upload('file', fd))
    settle('third', c.send('third', { n: 3 }))
  }, fileText)
  assert.equal(await page.evaluate(() => window.__done.length), 0, 'nothing settles while the server is down')

  await pushd.start()
  await waitActive(page, 20000)
  const connectionId = await page.evaluate(() => window.client.connectionId)
  await page.waitForFunction(() => window.__done.length === 3, null, { timeout: 15000, polling: 50 })
  const done = await page.evaluate(() => window.__done)
  assert.deepEqual(done.map(d => d.label), ['first', 'upload', 'third'], JSON.stringify(done))
  for (const d of done) {
    assert.equal(d.status, 200, JSON.stringify(d))
    assert.equal(d.body.success, true, JSON.stringify(d))
  }
  assert.equal(done[0].body.data.path, 'first')
  assert.equal(done[0].body.data.connectionId, connectionId)
  assert.deepEqual(done[0].body.data.body, { n: 1 })
  assert.equal(done[0].body.data.query.q, 'a')
  assert.equal(done[1].body.data.path, 'file')
  assert.equal(done[1].body.data.fields.note, 'queued upload')
  assert.deepEqual(done[1].body.data.files.map(f => [f.field, f.name, f.size]), [['file', 'hello.txt', fileText.length]])
  assert.deepEqual(done[2].body.data.body, { n: 3 })

  // The echo app pushed each message back once: exactly the two sends, in order.
  const acks = await waitEvents(page, 'server-ack', 2)
  await pushd.push('server-ack', { barrier: true })
  const all = await waitEvents(page, 'server-ack', 3)
  assert.deepEqual(all.map(a => JSON.parse(a.data).path ?? 'barrier'), ['first', 'third', 'barrier'], JSON.stringify(acks))
}))

test('removeListener survives a reconnect; listeners added while disconnected are sent after it', t => withSetup(t, async ({ pushd, page }) => {
  await createClient(page, { listeners: ['ev-a', 'ev-b'] })
  await waitActive(page)
  const status = await page.evaluate(async () => (await window.client.removeListener('ev-b')).status)
  assert.equal(status, 200)
  await eventually(async () => !(await pushd.connections()).list[0].listeners.includes('ev-b'), { what: 'ev-b removed on the server' })

  await page.evaluate(() => window.__setVisible(false))
  await page.waitForFunction(() => !window.client.isActive(), null, { timeout: 5000, polling: 50 })
  // Queued while disconnected; settles after the next connect-finish.
  await page.evaluate(() => { window.__added = null; window.client.addListener('ev-c', window.__record('ev-c')).then(r => { window.__added = r.status }) })
  await page.evaluate(() => window.__setVisible(true))
  await waitActive(page)
  await page.waitForFunction(() => window.__added === 200, null, { timeout: 10000, polling: 50 })

  const conn = await eventually(async () => { const l = (await pushd.connections()).list; return l.length === 1 && l[0] }, { what: 'one connection' })
  assert.ok(!conn.listeners.includes('ev-b'), `ev-b came back: ${conn.listeners}`)
  assert.ok(conn.listeners.includes('ev-a') && conn.listeners.includes('ev-c'), `listeners: ${conn.listeners}`)

  // ev-b is not delivered to the page; ev-a and ev-c are (the stream is ordered, so ev-c is a barrier).
  await pushd.push('ev-b', { n: 'b' })
  await pushd.push('ev-a', { n: 'a' })
  await pushd.push('ev-c', { n: 'c' })
  await waitEvents(page, 'ev-a')
  await waitEvents(page, 'ev-c')
  assert.equal((await page.evaluate(() => window.__got('ev-b'))).length, 0)
}))

test('switchURL moves the connection to another app', t => withSetup(t, async ({ pushd, page }) => {
  await createClient(page, { listeners: ['server-push', 'connect-close'] })
  await waitActive(page)
  assert.equal((await pushd.connections('demo')).total, 1)

  await page.evaluate(() => window.client.switchURL('/sse/other'))
  await page.waitForFunction(() => window.client.isActive() && window.client.connectionName === 'other', null, { timeout: 10000, polling: 50 })
  await eventually(async () => (await pushd.connections('demo')).total === 0, { what: 'the demo connection to close' })
  const other = await pushd.connections('other')
  assert.equal(other.total, 1)
  assert.equal(other.list[0].id, await page.evaluate(() => window.client.connectionId))
  const closes = await waitEvents(page, 'connect-close')
  assert.equal(closes[0].reason, 'switchURL')

  await pushd.push('server-push', { app: 'other' }, {}, 'other')
  const got = await waitEvents(page, 'server-push')
  assert.deepEqual(JSON.parse(got[0].data), { app: 'other' })
  const r = await page.evaluate(async () => (await (await window.client.send('ping', { x: 1 })).json()).data)
  assert.equal(r.path, 'ping')
}))

test('destroy() leaves no connection, timer or listener behind', t => withSetup(t, async ({ pushd, page }) => {
  const baseline = await page.evaluate(() => ({ listeners: window.__listenerCount(), intervals: window.__intervals.size }))
  await createClient(page, { listeners: ['server-push', 'connect-close'] })
  await waitActive(page)
  assert.ok(await page.evaluate(() => window.__listenerCount()) > baseline.listeners, 'the client registers window/document listeners')
  assert.ok(await page.evaluate(() => window.__intervals.size) > baseline.intervals, 'the client runs an idle-check interval')
  await pushd.push('server-push', { n: 1 })
  await waitEvents(page, 'server-push')

  await page.evaluate(() => window.client.destroy())
  await eventually(async () => (await pushd.connections()).total === 0, { timeoutMs: 5000, what: 'the server connection list to be empty' })
  const state = await page.evaluate(() => ({
    listeners: window.__listenerCount(),
    intervals: window.__intervals.size,
    openSources: window.__openSources(),
    active: window.client.isActive()
  }))
  assert.deepEqual(state, { listeners: baseline.listeners, intervals: baseline.intervals, openSources: 0, active: false })
  await page.waitForFunction(() => window.__timeouts.size === 0, null, { timeout: 5000, polling: 50 })
  const closes = await waitEvents(page, 'connect-close')
  assert.equal(closes[0].reason, 'destroy')
  // After destroy, calls are refused and connect() is a no-op.
  assert.match(await page.evaluate(() => window.client.send('x').then(() => 'resolved', e => String(e))), /closed/)
  await page.evaluate(() => window.client.connect())
  assert.equal(await page.evaluate(() => window.__openSources()), 0)
  assert.equal((await pushd.connections()).total, 0)
}))

test('the module and the classic-script forms both load and connect', t => withSetup(t, async ({ pushd, page }) => {
  const source = readFileSync(join(repoRoot, 'clients/js/sse.js'), 'utf8')
  assert.match(source, /\nexport default Sse\s*$/)
  const mod = await fetch(`${pushd.origin}/sse/demo`)
  assert.match(mod.headers.get('content-type'), /javascript/)
  assert.equal(await mod.text(), source)
  const classic = await fetch(`${pushd.origin}/sse/demo/sse.js?script-type=script`)
  assert.match(classic.headers.get('content-type'), /javascript/)
  assert.equal(await classic.text(), source.replace(/export default Sse\s*$/, ''))

  // Classic script first: it must register window.Sse by itself.
  assert.equal(await page.evaluate(() => typeof window.Sse), 'undefined')
  await page.evaluate(() => new Promise((resolve, reject) => {
    const s = document.createElement('script')
    s.src = '/sse/demo?script-type=script'
    s.onload = resolve
    s.onerror = () => reject(new Error('classic script failed to load'))
    document.head.appendChild(s)
  }))
  assert.equal(await page.evaluate(() => typeof window.Sse), 'function')
  const kinds = await page.evaluate(async () => {
    const a = await import('/sse/demo?v=1')
    const b = await import('/sse/demo/sse.js')
    return [typeof a.default, a.default.name, typeof b.default, a.default !== window.Sse]
  })
  assert.deepEqual(kinds, ['function', 'Sse', 'function', true])
  await page.evaluate(() => {
    window.__record('server-push')
    window.client = new window.Sse({ url: '/sse/demo', eventListeners: { 'server-push': window.__record('server-push') } })
  })
  await waitActive(page)
  await pushd.push('server-push', { classic: true })
  const got = await waitEvents(page, 'server-push')
  assert.deepEqual(JSON.parse(got[0].data), { classic: true })
}))

/** Returns a function counting the server's QoS backlog; fails when GET /messages does not answer 200. */
async function qosBacklog (pushd) {
  const probe = await pushd.api('GET', '/messages')
  assert.equal(probe.status, 200, `GET /api/v1/apps/demo/messages -> ${probe.status} ${JSON.stringify(probe.body)}`)
  return async () => {
    const r = await pushd.api('GET', '/messages')
    assert.equal(r.status, 200)
    return r.body.total ?? (r.body.list || r.body).length
  }
}

test('a QoS message is received once and acknowledged (the backlog empties)', t => withSetup(t, async ({ pushd, page }) => {
  const backlog = await qosBacklog(pushd)
  // Stored while the user is offline, delivered (resent) on connect.
  const offline = await pushd.api('POST', '/send', { to: { userIds: [USER] }, event: 'q-push', data: { n: 'offline' }, qos: true })
  assert.equal(offline.status, 200, JSON.stringify(offline.body))
  assert.equal(offline.body.stored, true, `QoS send to an offline user: ${JSON.stringify(offline.body)}`)
  assert.ok(await backlog() >= 1)

  const acks = []
  page.on('request', r => { if (r.url().includes('/connect/ack.do')) acks.push(JSON.parse(r.postData())) })
  await createClient(page, { listeners: ['q-push'] })
  await waitActive(page)
  await waitEvents(page, 'q-push')
  await eventually(async () => await backlog() === 0, { what: 'the QoS backlog to empty after the ack' })
  // The browser reports its requests over CDP, which may reach us after the server's answer.
  await eventually(() => {
    if (acks.some(a => a && a.ids.includes(offline.body.id))) return true
    throw new Error(`acks so far: ${JSON.stringify(acks)}`)
  }, { what: `an ack naming ${offline.body.id}` })

  // Sent while online: delivered once with its QoS id and acknowledged.
  const online = await pushd.api('POST', '/send', { to: { userIds: [USER] }, event: 'q-push', data: { n: 'online' }, qos: true })
  assert.equal(online.status, 200, JSON.stringify(online.body))
  const got = await waitEvents(page, 'q-push', 2)
  assert.equal(got[1].id, online.body.id)
  await eventually(async () => await backlog() === 0, { what: 'the QoS backlog to empty' })

  // A reconnect does not bring either message back to the listener.
  await page.evaluate(() => window.__setVisible(false))
  await page.evaluate(() => window.__setVisible(true))
  await waitActive(page)
  await pushd.push('q-push', { n: 'barrier' })
  const all = await waitEvents(page, 'q-push', 3)
  assert.deepEqual(all.map(e => JSON.parse(e.data).n), ['offline', 'online', 'barrier'])
}))

test('a QoS message redelivered because its ack was lost reaches the listener once', t => withSetup(t, async ({ pushd, page }) => {
  const backlog = await qosBacklog(pushd)
  // Acks are lost on the way until the server has sent the message twice.
  let blocked = 0
  await page.route('**/connect/ack.do*', route => { blocked++; return route.abort() })
  await page.evaluate(() => { window.__countRaw = ['q-dup'] })
  await createClient(page, { listeners: ['q-dup'] })
  await waitActive(page)
  const sent = await pushd.api('POST', '/send', { to: { userIds: [USER] }, event: 'q-dup', data: { n: 1 }, qos: true })
  assert.equal(sent.status, 200, JSON.stringify(sent.body))
  await page.waitForFunction(id => window.__raw.filter(r => r.id === id).length >= 2, sent.body.id, { timeout: 60000, polling: 100 })
  assert.ok(blocked >= 1, 'the client tried to ack')
  await page.unroute('**/connect/ack.do*')
  await eventually(async () => await backlog() === 0, { timeoutMs: 60000, intervalMs: 200, what: 'the backlog to empty once acks get through' })
  await pushd.push('q-dup', { n: 'barrier' })
  const got = await waitEvents(page, 'q-dup', 2)
  assert.deepEqual(got.map(e => JSON.parse(e.data).n), [1, 'barrier'])
  assert.equal(got[0].id, sent.body.id)
}))

// Real-browser tests of resumable streams: the harness's demo app keeps history for every channel
// (tiny.* only 2 events) and every user. Our client and a plain EventSource lose their connection,
// miss events, reconnect by themselves and get exactly the missed ones; a stream whose history was
// trimmed past the client's position is named in sse-gap and connect-finish says resumed false.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect } from 'node:net'
import { USER, Pushd, useBrowser, currentBrowser, openPage, withSetup, createClient, waitActive, waitEvents, eventually, freePort } from './harness.js'

useBrowser()

/**
 * A TCP proxy in front of pushd that the test can cut: cut() drops every connection through it and
 * closes those that come until restore(), as a network that went away and came back.
 */
async function startProxy (target) {
  const port = await freePort()
  const sockets = new Set()
  let down = false
  const server = createServer(client => {
    if (down) return client.destroy()
    const upstream = connect(target, '127.0.0.1')
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      sockets.add(a)
      a.on('error', () => b.destroy())
      a.on('close', () => { sockets.delete(a); b.destroy() })
      a.pipe(b)
    }
  })
  await new Promise(resolve => server.listen(port, '127.0.0.1', resolve))
  return {
    origin: `http://127.0.0.1:${port}`,
    cut () { down = true; sockets.forEach(s => s.destroy()) },
    restore () { down = false },
    close () { this.cut(); return new Promise(resolve => server.close(resolve)) }
  }
}

/**
 * Runs body with a fresh pushd (the harness's CONFIG) and a page whose origin is a proxy to it (the
 * demo cookie of 127.0.0.1 goes to any port), so the test can cut the page's network.
 */
async function withProxy (t, body) {
  const pushd = await Pushd.start()
  const proxy = await startProxy(pushd.port)
  const { page, context } = await openPage(currentBrowser(), pushd, proxy.origin)
  try {
    await body({ pushd, page, proxy })
  } catch (e) {
    t.diagnostic(`pushd log:\n${pushd.log}`)
    throw e
  } finally {
    await context.close()
    await proxy.close()
    await pushd.stop()
  }
}

/** Sends event to the target through the server API; returns the answer body. */
async function send (pushd, to, event, data, extra = {}) {
  const r = await pushd.api('POST', '/send', { to, event, data, ...extra })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  return r.body
}

/** Records the lastEventId of the page's connects (the query parameter) and their Last-Event-ID headers. */
function recordConnects (page) {
  const connects = []
  page.on('request', r => {
    const u = new URL(r.url())
    if (u.pathname !== '/sse/demo/connect') return
    const c = { query: u.searchParams.get('lastEventId'), header: undefined }
    connects.push(c)
    // headers() has only what the page set; the browser adds Last-Event-ID itself.
    r.allHeaders().then(h => { c.header = h['last-event-id'] || null }, () => { c.header = null })
  })
  return connects
}

const ROOM = { channels: ['room'] }
const ME = { userIds: [USER] }

/** The n of the news events the page's listener got, in order. */
async function newsNumbers (page) {
  return (await page.evaluate(() => window.__got('news'))).map(e => JSON.parse(e.data).n)
}

test('our client whose network drops while its channel and its user are sent events gets each of them once, in order, after reconnecting by itself', t => withProxy(t, async ({ pushd, page, proxy }) => {
  const connects = recordConnects(page)
  await createClient(page, { listeners: ['news', 'bell', 'sse-gap', 'connect-finish'], options: { query: { channel: 'room' } } })
  await waitActive(page)
  const first = await page.evaluate(() => window.client.connectResponse)
  assert.match(first.position, /^p\./, 'connect-finish gives the position')
  assert.equal(first.resumed, undefined, 'a connect without positions says nothing about resuming')
  assert.equal(await page.evaluate(() => window.client.position), first.position)

  // The network goes away while sends are made, then comes back; the client reconnects by itself.
  const outage = async sends => {
    const before = connects.length
    proxy.cut()
    await page.waitForFunction(() => !window.client.isActive(), null, { timeout: 10000, polling: 50 })
    await eventually(async () => (await pushd.connections()).total === 0, { what: 'the server to see the connection go' })
    await sends()
    proxy.restore()
    await waitActive(page)
    assert.ok(connects.length > before, 'the client reconnected')
    return connects.at(-1)
  }

  // Before any event: connect-finish's position resumes.
  let again = await outage(async () => {
    await send(pushd, ROOM, 'news', { n: 1 })
    await send(pushd, ME, 'news', { n: 2 })
  })
  assert.equal(again.query, first.position)
  await waitEvents(page, 'news', 2)

  // After events and a QoS message: the last positions id resumes (the QoS id does not replace it).
  await send(pushd, ROOM, 'news', { n: 3 })
  const last = (await waitEvents(page, 'news', 3))[2].id
  assert.match(last, /^p\./)
  const bell1 = await send(pushd, ME, 'bell', { n: 1 }, { qos: true })
  await waitEvents(page, 'bell')
  assert.equal(await page.evaluate(() => window.client.position), last, 'the client keeps the latest positions id')
  let bell2
  again = await outage(async () => {
    await send(pushd, ROOM, 'news', { n: 4 })
    await send(pushd, ME, 'news', { n: 5 })
    await send(pushd, { channels: ['room'], userIds: [USER] }, 'news', { n: 6 })
    bell2 = await send(pushd, ME, 'bell', { n: 2 }, { qos: true })
    assert.equal(bell2.stored, true, JSON.stringify(bell2))
    await send(pushd, ROOM, 'news', { n: 7 })
  })
  assert.equal(again.query, last, 'the reconnect names the last positions the client got')
  await waitEvents(page, 'news', 7)
  await send(pushd, ROOM, 'news', { n: 8 })
  // A barrier on the user's stream: whatever was duplicated would have arrived before it.
  await send(pushd, ME, 'news', { n: 9 })
  await waitEvents(page, 'news', 9)
  assert.deepEqual(await newsNumbers(page), [1, 2, 3, 4, 5, 6, 7, 8, 9])

  const finishes = (await page.evaluate(() => window.__got('connect-finish'))).map(e => JSON.parse(e.data))
  assert.deepEqual(finishes.map(f => f.resumed), [undefined, true, true])
  assert.equal(await page.evaluate(() => window.client.connectResponse.resumed), true)
  assert.deepEqual(await page.evaluate(() => window.__got('sse-gap')), [], 'nothing was lost')
  // QoS keeps its own ids and acknowledgements: each delivered once, the backlog empties.
  const bells = await waitEvents(page, 'bell', 2)
  assert.deepEqual(bells.map(e => e.id), [bell1.id, bell2.id])
  await eventually(async () => (await pushd.api('GET', '/messages')).body.total === 0, { what: 'the QoS backlog to empty' })
}))

test('a plain EventSource whose stream the server closes reconnects by itself with Last-Event-ID and gets what its channel and user missed', t => withSetup(t, async ({ pushd, page }) => {
  const connects = recordConnects(page)
  await page.evaluate(() => {
    window.__news = []
    window.__finish = []
    const es = window.__es = new EventSource('/sse/demo/connect?channel=room')
    es.addEventListener('news', e => window.__news.push({ n: JSON.parse(e.data).n, id: e.lastEventId }))
    es.addEventListener('connect-finish', e => window.__finish.push(JSON.parse(e.data)))
  })
  await page.waitForFunction(() => window.__finish.length === 1, null, { timeout: 10000, polling: 50 })
  await send(pushd, ROOM, 'news', { n: 1 })
  await page.waitForFunction(() => window.__news.length === 1, null, { timeout: 10000, polling: 50 })

  const { list } = await pushd.connections()
  assert.equal(list.length, 1)
  const kicked = await pushd.api('POST', '/disconnect', { connectionIds: [list[0].id] })
  assert.equal(kicked.body.disconnected, 1, JSON.stringify(kicked.body))
  await eventually(async () => (await pushd.connections()).total === 0, { what: 'the kicked connection to go' })
  await send(pushd, ROOM, 'news', { n: 2 })
  await send(pushd, ME, 'news', { n: 3 })
  await send(pushd, ROOM, 'news', { n: 4 })
  // The browser waits retry: (the app's reconnect_time) before reconnecting: the sends were missed.
  assert.equal((await pushd.connections()).total, 0, 'sent while the EventSource was away')

  await page.waitForFunction(() => window.__finish.length === 2, null, { timeout: 15000, polling: 50 })
  await page.waitForFunction(() => window.__news.length >= 4, null, { timeout: 10000, polling: 50 })
  await send(pushd, ME, 'news', { n: 5 })
  await page.waitForFunction(() => window.__news.length >= 5, null, { timeout: 10000, polling: 50 })
  const news = await page.evaluate(() => window.__news)
  assert.deepEqual(news.map(e => e.n), [1, 2, 3, 4, 5])
  assert.equal((await page.evaluate(() => window.__finish))[1].resumed, true)
  assert.equal(connects.length, 2)
  await eventually(() => connects.every(c => c.header !== undefined), { what: 'the connects\' headers' })
  assert.equal(connects[0].header, null)
  assert.match(connects[1].header || '', /^p\./, 'the browser sent Last-Event-ID itself')
  await page.evaluate(() => window.__es.close())
}))

test('a stream trimmed past the client\'s position is named in sse-gap with reason trimmed, connect-finish says resumed false, the other stream resumes', t => withSetup(t, async ({ pushd, page }) => {
  await createClient(page, { listeners: ['news', 'sse-gap', 'connect-finish', 'connect-close'], options: { query: { channel: 'tiny.room' } } })
  await waitActive(page)
  await send(pushd, { channels: ['tiny.room'] }, 'news', { n: 1 })
  await waitEvents(page, 'news', 1)

  // Kicked, the client stays closed until connect(): it misses 4 events of tiny.room (which keeps 2)
  // and one of its user.
  const kicked = await pushd.api('POST', '/disconnect', { userIds: [USER] })
  assert.equal(kicked.status, 200, JSON.stringify(kicked.body))
  await waitEvents(page, 'connect-close')
  for (const n of [2, 3, 4, 5]) await send(pushd, { channels: ['tiny.room'] }, 'news', { n })
  await send(pushd, ME, 'news', { n: 'user' })
  await page.evaluate(() => window.client.connect())
  await waitActive(page)

  const gaps = await waitEvents(page, 'sse-gap')
  assert.equal(gaps.length, 1)
  assert.deepEqual(JSON.parse(gaps[0].data), { streams: [{ channel: 'tiny.room', reason: 'trimmed' }] })
  const bus = await waitEvents(page, 'sse-gap', 1, 'bus')
  assert.equal(bus[0].data, gaps[0].data, 'sse-gap reaches the window bus like any event')
  assert.equal(await page.evaluate(() => window.client.connectResponse.resumed), false)
  const finishes = await waitEvents(page, 'connect-finish', 2)
  assert.equal(JSON.parse(finishes[1].data).resumed, false)
  // What tiny.room still keeps (4, 5) and the user's event, in the order they were sent.
  await send(pushd, ME, 'news', { n: 'barrier' })
  await waitEvents(page, 'news', 5)
  assert.deepEqual(await newsNumbers(page), [1, 4, 5, 'user', 'barrier'])
}))


test('our client flapping (four network cuts) while its channel and its user get a steady flow of events receives every one once, in order', t => withProxy(t, async ({ pushd, page, proxy }) => {
  await createClient(page, { listeners: ['news', 'sse-gap', 'connect-finish'], options: { query: { channel: 'room' } } })
  await waitActive(page)
  let sent = 0
  let flowing = true
  // One send at a time, alternating the channel and the user: their order is the order of the sends.
  const flow = (async () => {
    while (flowing) {
      sent++
      await send(pushd, sent % 2 ? ROOM : ME, 'news', { n: sent })
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  })()
  try {
    for (let i = 0; i < 4; i++) {
      const finishes = (await page.evaluate(() => window.__got('connect-finish'))).length
      await waitEvents(page, 'news', sent) // some arrive live before each cut
      proxy.cut()
      await page.waitForFunction(() => !window.client.isActive(), null, { timeout: 10000, polling: 50 })
      const at = sent
      await eventually(() => sent >= at + 5, { what: 'sends while the network is down' })
      proxy.restore()
      await waitEvents(page, 'connect-finish', finishes + 1)
    }
  } finally {
    flowing = false
    await flow
  }
  await waitEvents(page, 'news', sent, 'listener', 20000)
  const got = await newsNumbers(page)
  assert.deepEqual(got, Array.from({ length: sent }, (_, i) => i + 1))
  const finishes = (await page.evaluate(() => window.__got('connect-finish'))).map(e => JSON.parse(e.data).resumed)
  assert.deepEqual(finishes, [undefined, true, true, true, true])
  assert.deepEqual(await page.evaluate(() => window.__got('sse-gap')), [])
}))

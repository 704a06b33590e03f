// Real-browser tests of the client's channels (subscribe/unsubscribe, queued while offline, joined
// again on reconnect) against a real pushd whose demo app makes channels public, except secret-*
// which only the backend may join.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { USER, useBrowser, withSetup, createClient, waitActive, waitEvents, eventually } from './harness.js'

useBrowser()

const CHANNELS_CONFIG = () => `
node_id: browser-channels
apps:
  - name: demo
    path: /sse/demo
    auth: {mode: demo}
    api_keys: [demo-key]
    channels:
      namespaces:
        - {prefix: "secret-", join: server}
        - {match: "*", join: public}
`

/** Pushes event to one channel through the server API; returns how many connections it reached. */
async function pushTo (pushd, channel, event = 'news') {
  const r = await pushd.api('POST', '/send', { to: { channels: [channel] }, event, data: { channel } })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  return r.body.delivered
}

/** The channels the server has the page's one connection in, sorted. */
async function serverChannels (pushd) {
  const { list } = await pushd.connections()
  assert.equal(list.length, 1, JSON.stringify(list))
  return [...(list[0].channels || [])].sort()
}

/** The channels of the news events the page received, in order. */
async function newsChannels (page) {
  return (await page.evaluate(() => window.__got('news'))).map(e => JSON.parse(e.data).channel)
}

/** Pushes to barrier (a channel the page is in) and waits for it: what was sent before has arrived. */
async function barrier (pushd, page, channel) {
  const n = (await newsChannels(page)).length
  assert.equal(await pushTo(pushd, channel), 1)
  await waitEvents(page, 'news', n + 1)
}

/** Records the URLs of the page's connects and channel calls. */
function recordRequests (page) {
  const seen = { connects: [], calls: [] }
  page.on('request', r => {
    const u = r.url()
    if (u.includes('/sse/demo/connect?')) seen.connects.push(new URL(u).searchParams)
    if (/subscribe\.do/.test(u)) seen.calls.push({ path: new URL(u).pathname, body: JSON.parse(r.postData()) })
  })
  return seen
}

test('a page in three channels (one from the query, two subscribed) gets each one\'s pushes and none after unsubscribing', t => withSetup(t, async ({ pushd, page }) => {
  await createClient(page, { listeners: ['news'], options: { query: { channel: 'room-a' } } })
  await waitActive(page)
  const lists = await page.evaluate(async () => [await window.client.subscribe('room-b'), await window.client.subscribe(['room-c'])])
  assert.deepEqual(lists.map(l => [...l].sort()), [['room-a', 'room-b'], ['room-a', 'room-b', 'room-c']])
  assert.deepEqual(await serverChannels(pushd), ['room-a', 'room-b', 'room-c'])

  for (const ch of ['room-a', 'room-b', 'room-c']) assert.equal(await pushTo(pushd, ch), 1, ch)
  await waitEvents(page, 'news', 3)
  assert.deepEqual(await newsChannels(page), ['room-a', 'room-b', 'room-c'])

  const left = await page.evaluate(() => window.client.unsubscribe('room-b'))
  assert.deepEqual([...left].sort(), ['room-a', 'room-c'])
  assert.equal(await pushTo(pushd, 'room-b'), 0)
  // The stream is ordered: once the barrier arrives, a room-b push would have too.
  await barrier(pushd, page, 'room-c')
  assert.deepEqual(await newsChannels(page), ['room-a', 'room-b', 'room-c', 'room-c'])
}, CHANNELS_CONFIG))

test('subscribe and unsubscribe made before connect or while kicked apply once connected; reconnects join the channels again', t => withSetup(t, async ({ pushd, page }) => {
  const seen = recordRequests(page)
  // Called in the same task as the constructor: before connect-finish, so queued.
  await page.evaluate(async () => {
    const { default: Sse } = await import('/sse/demo')
    const record = window.__record('news')
    window.__settled = []
    const settle = (label, p) => p.then(v => window.__settled.push({ label, channels: [...v].sort() }), e => window.__settled.push({ label, error: e.message, status: e.status }))
    window.__settle = settle
    window.client = new Sse({ url: '/sse/demo', eventListeners: { news: record, 'connect-close': window.__record('connect-close') }, query: { channel: 'q1' }, reconnectTime: 200, maxReconnectTime: 1000 })
    settle('early', window.client.subscribe(['e1', 'e2']))
  })
  await waitActive(page)
  await page.waitForFunction(() => window.__settled.length === 1, null, { timeout: 10000, polling: 50 })
  assert.deepEqual(await page.evaluate(() => window.__settled), [{ label: 'early', channels: ['e1', 'e2', 'q1'] }])
  assert.deepEqual(await serverChannels(pushd), ['e1', 'e2', 'q1'])
  const first = await page.evaluate(() => window.client.connectionId)

  // Kicked: the client stays closed until connect(); calls made meanwhile wait for the next connection.
  const kicked = await pushd.api('POST', '/disconnect', { userIds: [USER] })
  assert.equal(kicked.status, 200, JSON.stringify(kicked.body))
  const closes = await waitEvents(page, 'connect-close')
  assert.equal(closes[0].info.reason, 'kicked')
  assert.equal(await page.evaluate(() => window.client.isActive()), false)
  await page.evaluate(() => {
    window.__settle('late', window.client.subscribe('late'))
    window.__settle('leave', window.client.unsubscribe('e2'))
  })
  await eventually(async () => (await pushd.connections()).total === 0, { what: 'the kicked connection to go' })
  assert.equal(await page.evaluate(() => window.__settled.length), 1, 'nothing settles while offline')

  await page.evaluate(() => window.client.connect())
  await waitActive(page)
  await page.waitForFunction(() => window.__settled.length === 3, null, { timeout: 10000, polling: 50 })
  const settled = await page.evaluate(() => window.__settled)
  assert.deepEqual(settled.slice(1), [{ label: 'late', channels: ['e1', 'late', 'q1'] }, { label: 'leave', channels: ['e1', 'late', 'q1'] }])
  assert.notEqual(await page.evaluate(() => window.client.connectionId), first)
  // The reconnect joined what the client had joined, minus the channel left while offline.
  assert.deepEqual(seen.connects.at(-1).get('channels').split(',').sort(), ['e1', 'q1'])
  assert.equal(seen.connects.at(-1).get('channel'), null)
  assert.deepEqual(await serverChannels(pushd), ['e1', 'late', 'q1'])

  // A reconnect (hide and show the tab) joins them all again, without a subscribe.do.
  const calls = seen.calls.length
  const second = await page.evaluate(() => window.client.connectionId)
  await page.evaluate(() => window.__setVisible(false))
  await page.waitForFunction(() => !window.client.isActive(), null, { timeout: 5000, polling: 50 })
  await page.evaluate(() => window.__setVisible(true))
  await waitActive(page)
  assert.notEqual(await page.evaluate(() => window.client.connectionId), second)
  const ids = await eventually(async () => { const l = (await pushd.connections()).list; return l.length === 1 && l }, { what: 'one connection after showing the tab' })
  assert.deepEqual([...ids[0].channels].sort(), ['e1', 'late', 'q1'])
  assert.equal(seen.calls.length, calls, 'no channel call for the reconnect')
  for (const ch of ['q1', 'e1', 'late']) assert.equal(await pushTo(pushd, ch), 1, ch)
  assert.equal(await pushTo(pushd, 'e2'), 0)
  await waitEvents(page, 'news', 3)
  assert.deepEqual(await newsChannels(page), ['q1', 'e1', 'late'])

  // Leaving the query's own channel lasts too: the next connect leaves it out of the query.
  await page.evaluate(() => window.client.unsubscribe('q1'))
  await page.evaluate(() => window.__setVisible(false))
  await page.waitForFunction(() => !window.client.isActive(), null, { timeout: 5000, polling: 50 })
  await page.evaluate(() => window.__setVisible(true))
  await waitActive(page)
  await eventually(async () => (await pushd.connections()).total === 1, { what: 'one connection after showing the tab again' })
  assert.deepEqual(await serverChannels(pushd), ['e1', 'late'])
  assert.equal(await pushTo(pushd, 'q1'), 0)
}, CHANNELS_CONFIG))

test('a join the channel policy refuses rejects with 403 and the channel\'s name, and is not joined on reconnect', t => withSetup(t, async ({ pushd, page }) => {
  const seen = recordRequests(page)
  await createClient(page, { listeners: ['news'] })
  await waitActive(page)
  const got = await page.evaluate(() => window.client.subscribe(['room-ok', 'secret-plans']).then(
    v => ({ resolved: v }), e => ({ name: e.constructor.name, message: e.message, status: e.status })))
  assert.equal(got.status, 403, JSON.stringify(got))
  assert.equal(got.name, 'Error')
  assert.match(got.message, /secret-plans/)
  // All or nothing: room-ok was not joined either.
  assert.deepEqual(await serverChannels(pushd), [])
  assert.equal(await pushTo(pushd, 'secret-plans'), 0)

  // The client does not remember a refused channel: the reconnect's connect does not ask for it.
  assert.deepEqual(await page.evaluate(() => window.client.subscribe('room-ok')), ['room-ok'])
  await page.evaluate(() => window.__setVisible(false))
  await page.waitForFunction(() => !window.client.isActive(), null, { timeout: 5000, polling: 50 })
  await page.evaluate(() => window.__setVisible(true))
  await waitActive(page)
  assert.equal(seen.connects.at(-1).get('channels'), 'room-ok')
  await eventually(async () => (await pushd.connections()).total === 1, { what: 'one connection after showing the tab' })
  assert.deepEqual(await serverChannels(pushd), ['room-ok'])
  assert.equal(await pushTo(pushd, 'room-ok'), 1)
  await waitEvents(page, 'news')
}, CHANNELS_CONFIG))

for (const reconnected of [false, true]) {
  const when = reconnected ? 'the next connection is already up' : 'the client is still offline'
  test(`a subscribe in flight when its connection is kicked (404) is kept and applied on the next connection (${when})`, t => withSetup(t, async ({ pushd, page }) => {
    await createClient(page, { listeners: ['news', 'connect-close'] })
    await waitActive(page)
    const first = await page.evaluate(() => window.client.connectionId)
    // Hold the first call in the browser until the server has closed its connection.
    let hold
    let calls = 0
    const held = new Promise(resolve => { hold = resolve })
    await page.route('**/connect/subscribe.do*', route => calls++ ? route.continue() : hold(route))
    await page.evaluate(() => {
      window.__settled = null
      window.client.subscribe('r1').then(v => { window.__settled = { channels: v } }, e => { window.__settled = { error: e.message, status: e.status } })
    })
    const route = await held
    assert.equal((await pushd.api('POST', '/disconnect', { userIds: [USER] })).status, 200)
    const closes = await waitEvents(page, 'connect-close')
    assert.equal(closes[0].info.reason, 'kicked')
    if (reconnected) {
      await page.evaluate(() => window.client.connect())
      await waitActive(page)
    }
    const [gone] = await Promise.all([page.waitForResponse(r => r.url().includes('/connect/subscribe.do')), route.continue()])
    assert.equal(gone.status(), 404, 'the held call reached the server after its connection had gone')
    assert.equal(JSON.parse(gone.request().postData()).connectionId, first)

    if (!reconnected) {
      await page.evaluate(() => window.client.connect())
      await waitActive(page)
    }
    await page.waitForFunction(() => window.__settled, null, { timeout: 10000, polling: 50 })
    assert.deepEqual(await page.evaluate(() => window.__settled), { channels: ['r1'] })
    assert.equal(calls, 2, 'sent again once')
    assert.deepEqual(await serverChannels(pushd), ['r1'])
    assert.equal(await pushTo(pushd, 'r1'), 1)
    await waitEvents(page, 'news')
  }, CHANNELS_CONFIG))
}

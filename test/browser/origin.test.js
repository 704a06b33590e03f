// Cross-origin calls of sse.js in chromium against a real pushd (node --test): a page on a configured
// CORS origin works; a page on a foreign origin is refused (issue 10 #2); a stream whose token expires
// reconnects with the page's fresh token (issue 10 #8).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import {
  USER, CONFIG, useBrowser, withSetup, openPage, createClient, waitActive, waitEvents, eventually
} from './harness.js'

useBrowser()

// http://localhost:PORT is another origin than pushd's http://127.0.0.1:PORT, served by the same process.
const localhost = pushd => `http://localhost:${pushd.port}`
const withCORS = port => CONFIG.replace('    enable_json_endpoints: true\n', `    enable_json_endpoints: true\n    cors: [http://localhost:${port}]\n`)

/**
 * Records, over CDP, the status of every answer to a request for the pushd origin's /connect — also
 * those the page may not read (CORS-blocked, no-cors, beacons); returns a function listing them.
 */
async function recordCalls (page, pushd) {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  const sent = new Map()
  const status = new Map()
  cdp.on('Network.requestWillBeSent', e => sent.set(e.requestId, { method: e.request.method, url: new URL(e.request.url) }))
  cdp.on('Network.responseReceivedExtraInfo', e => status.set(e.requestId, e.statusCode))
  return () => [...sent].filter(([id, r]) => status.has(id) && r.url.origin === pushd.origin && r.url.pathname.startsWith('/sse/demo/connect'))
    .map(([id, r]) => ({ method: r.method, path: r.url.pathname, status: status.get(id) }))
}

test('from a configured CORS origin the client connects, listens, sends, uploads, acks and closes', t => withSetup(t, async ({ pushd, browser }) => {
  const { page, context } = await openPage(browser, pushd, localhost(pushd))
  try {
    const calls = await recordCalls(page, pushd)
    const url = `${pushd.origin}/sse/demo`
    const query = { userId: USER }
    await createClient(page, { module: url, url, listeners: ['server-ack', 'q-push'], options: { query } })
    await waitActive(page)
    const id = await page.evaluate(() => window.client.connectionId)
    assert.deepEqual((await pushd.connections()).list.map(c => c.id), [id])

    const results = await page.evaluate(async query => {
      const c = window.client
      const fd = new FormData()
      fd.append('file', new File(['cross-origin upload'], 'x.txt', { type: 'text/plain' }))
      const out = {}
      out.add = (await c.addListener('ev-x', window.__record('ev-x'))).status
      const sent = await c.send('ping', { n: 1 }, query)
      out.send = [sent.status, (await sent.json()).data.path]
      const up = await c.upload('file', fd, query)
      out.upload = [up.status, (await up.json()).data.files.map(f => f.name)]
      out.remove = (await c.removeListener('ev-x')).status
      return out
    }, query)
    assert.deepEqual(results, { add: 200, send: [200, 'ping'], upload: [200, ['x.txt']], remove: 200 })
    const acks = await waitEvents(page, 'server-ack')
    assert.equal(JSON.parse(acks[0].data).path, 'ping')

    // A QoS message is acknowledged from this origin too: the backlog empties.
    const sent = await pushd.api('POST', '/send', { to: { userIds: [USER] }, event: 'q-push', data: { n: 1 }, qos: true })
    assert.equal(sent.status, 200, JSON.stringify(sent.body))
    await waitEvents(page, 'q-push')
    await eventually(async () => (await pushd.api('GET', '/messages')).body.total === 0, { what: 'the ack from the CORS origin to empty the backlog' })

    // The disconnect beacon from this origin closes the connection.
    await page.evaluate(() => window.client.close())
    await eventually(async () => (await pushd.connections()).total === 0, { what: 'the beacon from the CORS origin to close the connection' })
    await eventually(() => calls().some(c => c.path.endsWith('/disconnect.do')), { what: 'the beacon to be seen' })
    const refused = calls().filter(c => c.status >= 400)
    assert.deepEqual(refused, [], `refused calls: ${JSON.stringify(refused)}`)
    for (const p of ['/addListener.do', '/removeListener.do', '/ack.do', '/message/ping.do', '/upload/file.do', '/disconnect.do']) {
      assert.ok(calls().some(c => c.path.endsWith(p) && c.status === 200), `no 200 for ${p}: ${JSON.stringify(calls())}`)
    }
  } finally {
    await context.close()
  }
}, withCORS))

test('from a foreign origin the client cannot connect and no call acts on the victim\'s connection', t => withSetup(t, async ({ pushd, page: victim, browser }) => {
  await createClient(victim, { listeners: ['server-ack', 'a'] })
  await waitActive(victim)
  const id = await victim.evaluate(() => window.client.connectionId)

  const { page, context } = await openPage(browser, pushd, localhost(pushd))
  try {
    const calls = await recordCalls(page, pushd)
    // The client as a classic script, loaded into the foreign page (a module import is blocked by CORS anyway).
    await page.addScriptTag({ content: await (await fetch(`${pushd.origin}/sse/demo?script-type=script`)).text() })
    const base = `${pushd.origin}/sse/demo`
    await page.evaluate(base => { window.client = new window.Sse({ url: base, query: { userId: 'u1' }, reconnectTime: 200, maxReconnectTime: 1000 }) }, base)
    await eventually(() => calls().some(c => c.path === '/sse/demo/connect' && c.status === 403), { what: 'the foreign connect to be refused with 403' })
    assert.equal(await page.evaluate(() => window.client.isActive()), false)

    // The calls the client makes, as a forged page makes them: with the victim's id, as simple
    // requests (text/plain, multipart, a beacon) that need no preflight, and as the client's own
    // JSON calls (whose preflight fails).
    await page.evaluate(async ({ base, id }) => {
      const q = `connectionId=${id}&userId=u1`
      const simple = (path, body, type) => fetch(`${base}/connect/${path}`, { method: 'POST', mode: 'no-cors', credentials: 'include', body, headers: type ? { 'content-type': type } : {} }).catch(() => {})
      const fd = new FormData()
      fd.append('file', new File(['forged'], 'f.txt'))
      await simple(`message/pay.do?${q}`, '{"amount":100}', 'text/plain')
      await simple(`upload/file.do?${q}`, fd)
      await simple('addListener.do?userId=u1', JSON.stringify({ connectionId: id, listener: ['evil'] }), 'text/plain')
      await simple('removeListener.do?userId=u1', JSON.stringify({ connectionId: id, listener: ['a'] }), 'text/plain')
      await simple('ack.do?userId=u1', JSON.stringify({ connectionId: id, ids: ['x'] }), 'text/plain')
      navigator.sendBeacon(`${base}/connect/disconnect.do`, new URLSearchParams({ connectionId: id, reason: 'forged' }))
      // The client's fallback when sendBeacon is missing.
      await fetch(`${base}/connect/disconnect.do`, { method: 'POST', mode: 'no-cors', credentials: 'include', keepalive: true, body: new URLSearchParams({ connectionId: id, reason: 'forged' }) }).catch(() => {})
      await fetch(`${base}/connect/message/pay.do?${q}`, { method: 'POST', mode: 'cors', credentials: 'include', body: '{}', headers: { 'content-type': 'application/json' } }).catch(() => {})
    }, { base, id })
    await eventually(() => ['/message/pay.do', '/upload/file.do', '/addListener.do', '/removeListener.do', '/ack.do', '/disconnect.do']
      .every(p => calls().some(c => c.path.endsWith(p))), { what: `every forged call to be answered; so far ${JSON.stringify(calls())}` })
    const posts = calls().filter(c => c.method === 'POST')
    assert.ok(posts.length >= 6)
    for (const c of posts) assert.equal(c.status, 403, `forged call answered: ${JSON.stringify(c)}`)
    assert.ok(!calls().some(c => c.method === 'POST' && c.status < 400), JSON.stringify(calls()))

    // The victim's connection is open, listens as before and got no server-ack from a forged message.
    const conn = (await pushd.connections()).list
    assert.deepEqual(conn.map(c => c.id), [id])
    assert.deepEqual([...conn[0].listeners].sort(), ['a', 'server-ack'])
    await pushd.push('server-ack', { barrier: true })
    const got = await waitEvents(victim, 'server-ack')
    assert.deepEqual(got.map(e => JSON.parse(e.data)), [{ barrier: true }])
  } finally {
    await context.close()
  }
}))

const JWT_SECRET = 'browser-test-secret-0123456789abcdef'
const withJWT = () => CONFIG + `  - name: jwt
    path: /sse/jwt
    auth:
      mode: jwt
      jwt: {secret: ${JWT_SECRET}, sources: ["query:access_token"]}
    api_keys: [jwt-key]
`

/** An HS256 token for USER that expires in ttl seconds. */
function token (ttl) {
  const enc = o => Buffer.from(JSON.stringify(o)).toString('base64url')
  const msg = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ sub: USER, exp: Math.floor(Date.now() / 1000) + ttl })}`
  return `${msg}.${createHmac('sha256', JWT_SECRET).update(msg).digest('base64url')}`
}

test('a stream closed with token-expired reconnects with the token the page refreshed', t => withSetup(t, async ({ pushd, page }) => {
  await page.exposeFunction('freshToken', () => token(3600))
  await page.evaluate(async first => {
    const { default: Sse } = await import('/sse/jwt')
    window.__token = first
    const closed = window.__record('connect-close')
    window.client = new Sse({
      url: '/sse/jwt',
      reconnectTime: 200,
      maxReconnectTime: 1000,
      query: () => ({ access_token: window.__token }),
      eventListeners: {
        'connect-close' (e, info) {
          closed.call(this, e, info)
          if (info && info.reason === 'token-expired') window.freshToken().then(tok => { window.__token = tok })
        }
      }
    })
  }, token(2))
  await waitActive(page)
  const first = await page.evaluate(() => window.client.connectionId)
  const closes = await waitEvents(page, 'connect-close', 1, 'listener', 15000)
  assert.equal(closes[0].info.reason, 'token-expired')
  assert.equal(closes[0].who, 'server')
  await page.waitForFunction(first => window.client.isActive() && window.client.connectionId !== first, first, { timeout: 15000, polling: 50 })
  const second = await page.evaluate(() => window.client.connectionId)
  const conns = await pushd.api('GET', '/connections', undefined, 'jwt')
  assert.equal(conns.status, 200, JSON.stringify(conns.body))
  assert.deepEqual(conns.body.list.map(c => c.id), [second])
}, withJWT))

// The admin page (/admin/) in chromium against a real pushd (node --test): the token prompt, the
// tables, the charts, the search and the actions (send a test event, kick) with their confirmation.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { inflateSync } from 'node:zlib'
import {
  USER, ADMIN_TOKEN, Pushd, freePort, useBrowser, withSetup, openPage, createClient, waitActive, waitEvents, eventually
} from './harness.js'

useBrowser()

/** Opens the admin page in a new context of browser and logs in with token; returns the page. */
async function openAdmin (browser, pushd, token = ADMIN_TOKEN) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } })
  const page = await context.newPage()
  page.errors = []
  page.on('pageerror', e => page.errors.push(String(e)))
  await page.goto(`${pushd.origin}/admin`) // redirected to /admin/
  assert.equal(new URL(page.url()).pathname, '/admin/')
  await page.fill('#token', token)
  await page.click('#login-form button')
  return page
}

/**
 * Decodes a PNG as chromium's screenshots write it (8-bit RGB or RGBA, not interlaced) into
 * {width, height, pixel(x, y) → [r, g, b, a]}; throws on anything else, so a screenshot that is not
 * a readable image fails the test.
 */
function decodePng (png) {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature')
  let width, height, channels
  const idat = []
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at)
    const type = png.toString('latin1', at + 4, at + 8)
    const body = png.subarray(at + 8, at + 8 + length)
    if (type === 'IHDR') {
      width = body.readUInt32BE(0)
      height = body.readUInt32BE(4)
      const [depth, colour, , , interlace] = body.subarray(8, 13)
      assert.equal(depth, 8, 'PNG bit depth')
      assert.equal(interlace, 0, 'PNG interlace')
      channels = { 2: 3, 6: 4 }[colour]
      assert.ok(channels, `PNG colour type ${colour}`)
    } else if (type === 'IDAT') idat.push(body)
    else if (type === 'IEND') break
    at += 12 + length
  }
  const raw = inflateSync(Buffer.concat(idat))
  const stride = width * channels
  assert.equal(raw.length, height * (stride + 1), 'PNG data length')
  const out = Buffer.alloc(height * stride)
  // Undo each row's filter (PNG spec, section 9): a is the byte to the left, b above, c above-left.
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? out[y * stride + i - channels] : 0
      const b = y > 0 ? out[(y - 1) * stride + i] : 0
      const c = i >= channels && y > 0 ? out[(y - 1) * stride + i - channels] : 0
      let v
      switch (filter) {
        case 0: v = row[i]; break
        case 1: v = row[i] + a; break
        case 2: v = row[i] + b; break
        case 3: v = row[i] + ((a + b) >> 1); break
        case 4: {
          const p = a + b - c
          const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)]
          v = row[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)
          break
        }
        default: throw new Error(`PNG filter ${filter} in row ${y}`)
      }
      out[y * stride + i] = v & 0xff
    }
  }
  return {
    width,
    height,
    pixel (x, y) {
      const i = y * stride + x * channels
      return [out[i], out[i + 1], out[i + 2], channels === 4 ? out[i + 3] : 255]
    }
  }
}

/** How many pixels of a decoded image are within tolerance of the colour [r, g, b] (and opaque). */
function countColour (image, [r, g, b], tolerance) {
  let n = 0
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const [pr, pg, pb, pa] = image.pixel(x, y)
      if (pa > 200 && Math.abs(pr - r) < tolerance && Math.abs(pg - g) < tolerance && Math.abs(pb - b) < tolerance) n++
    }
  }
  return n
}

/** The rows of an app's table (nodes, users or connections) as lists of cell texts. */
function rows (page, table, app = 'demo') {
  return page.locator(`section[data-app="${app}"] table.${table} tbody tr`).evaluateAll(trs =>
    trs.map(tr => [...tr.cells].map(td => td.textContent)))
}

/**
 * Clicks the button of the row that data matches, then answers the confirmation dialog (after
 * fields.before(), when given).
 */
async function act (page, table, data, action, answer, fields = {}) {
  const [key, value] = Object.entries(data)[0]
  await page.locator(`section[data-app="demo"] table.${table} tr[data-${key}="${value}"] button.${action}`).click()
  const dialog = page.locator('#confirm')
  await dialog.waitFor({ state: 'visible', timeout: 5000 })
  if (fields.event !== undefined) await page.fill('#confirm-event', fields.event)
  if (fields.data !== undefined) await page.fill('#confirm-data', fields.data)
  await fields.before?.()
  await page.click(answer === 'ok' ? '#confirm-ok' : '#confirm button[value="cancel"]')
  await dialog.waitFor({ state: 'hidden', timeout: 5000 })
}

test('the admin page asks for the token, then shows nodes, online users and connections, live', t => withSetup(t, async ({ pushd, page: client, browser }) => {
  await createClient(client, { listeners: ['server-push'] })
  await waitActive(client)
  const connectionId = await client.evaluate(() => window.client.connectionId)

  const page = await openAdmin(browser, pushd, 'wrong')
  try {
    // A wrong token is refused and the page asks again.
    await page.waitForFunction(() => document.querySelector('#login-error').textContent.includes('invalid admin token'), null, { timeout: 10000 })
    assert.equal(await page.isVisible('#login'), true)

    await page.fill('#token', ADMIN_TOKEN)
    await page.click('#login-form button')
    const demo = page.locator('section[data-app="demo"]')
    await eventually(async () => (await rows(page, 'connections')).length === 1, { what: 'the connection listed' })
    assert.equal(await page.isVisible('#login'), false)
    assert.match(await demo.locator('h2').textContent(), /1 node\(s\), 1 user\(s\), 1 connection\(s\)/)
    const [node] = await rows(page, 'nodes')
    assert.deepEqual(node.slice(0, 4), ['browser-test', '1', '1', '0'])
    const [user] = await rows(page, 'users')
    assert.deepEqual(user.slice(0, 4), [USER, '', '', '1'])
    const [conn] = await rows(page, 'connections')
    assert.equal(conn[0], connectionId)
    assert.equal(conn[1], USER)
    assert.equal(conn[3], 'browser-test')
    assert.equal(conn[5], 'server-push')

    // Without reloading, the counters follow a send.
    const sendsBefore = Number(node[6])
    await pushd.push('server-push', { from: 'admin test' })
    await eventually(async () => Number((await rows(page, 'nodes'))[0][6]) === sendsBefore + 1,
      { what: 'the sends column to count the push' })

    // Forgetting the token returns to the prompt and stops showing data.
    await page.click('#logout')
    assert.equal(await page.isVisible('#login'), true)
    assert.equal(await page.locator('section[data-app]').count(), 0)
    assert.equal(await page.evaluate(() => sessionStorage.length), 0)
    assert.deepEqual(page.errors, [], 'page errors')
  } finally {
    await page.context().close()
  }
}))

test('the admin page draws the last minutes per node on canvases', t => withSetup(t, async ({ pushd, page: client, browser }) => {
  await createClient(client, { listeners: ['server-push'] })
  await waitActive(client)
  const page = await openAdmin(browser, pushd)
  try {
    const demo = page.locator('section[data-app="demo"]')
    await demo.waitFor({ timeout: 10000 })
    // Rates need two samples; sends between them make the sends and deliveries lines rise.
    await pushd.push('server-push', { n: 1 })
    await page.waitForFunction(() => Number(document.querySelector('section[data-app="demo"] canvas[data-chart="connections"]').dataset.points) >= 2, null, { timeout: 20000, polling: 100 })
    await pushd.push('server-push', { n: 2 })
    await page.waitForFunction(() => Number(document.querySelector('section[data-app="demo"] canvas[data-chart="deliveries"]').dataset.points) >= 2, null, { timeout: 20000, polling: 100 })

    // Each chart of the node holds pixels of the node's colour (#2563eb), well off the grey grid; the
    // QoS backlog chart holds its own line (QoS is on in the test config), flat at 0.
    const inked = await demo.locator('canvas').evaluateAll(canvases => canvases.map(c => {
      const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height)
      let node = 0
      let backlog = 0
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]]
        if (a > 200 && Math.abs(r - 0x25) < 30 && Math.abs(g - 0x63) < 30 && Math.abs(b - 0xeb) < 30) node++
        if (a > 200 && Math.abs(r - 0x4b) < 20 && Math.abs(g - 0x55) < 20 && Math.abs(b - 0x63) < 20) backlog++
      }
      return { chart: c.dataset.chart, node, backlog, points: Number(c.dataset.points), max: Number(c.dataset.max) }
    }))
    t.diagnostic(JSON.stringify(inked))
    assert.deepEqual(inked.map(c => c.chart), ['connections', 'sends', 'deliveries', 'slow', 'backlog'])
    // A chart with two samples holds a stub of line and its end marker: 19–23 pixels here, none
    // when nothing was drawn.
    for (const c of inked.slice(0, 4)) assert.ok(c.node > 10 && c.points >= 1, `chart ${c.chart} drew the node's line: ${JSON.stringify(c)}`)
    assert.ok(inked[4].backlog > 20 && inked[4].points >= 2, `the backlog line: ${JSON.stringify(inked[4])}`)
    assert.equal(inked[0].max, 1) // one connection: the axis tops at 1
    assert.ok(await demo.locator('.legend span').first().textContent() === 'browser-test')

    // The screenshot check: what chromium composited on screen, not what the canvases hold. Each
    // chart's screenshot (clipped to its canvas) is decoded; the node's four charts show the node's
    // colour and the backlog chart its grey line, on a mostly white background, so blank charts (or
    // canvases drawn but not shown) fail here. The backlog chart shows no node colour: the count
    // tells the colours apart.
    const shots = []
    for (const canvas of await demo.locator('.charts canvas').all()) {
      const box = await canvas.boundingBox()
      const image = decodePng(await canvas.screenshot())
      // The canvas's box sits between device pixels (x 286.8, width 216.8): the clip covers every
      // pixel it touches, up to one more on each side.
      assert.ok(Math.abs(image.width - box.width) < 2.5 && Math.abs(image.height - box.height) < 2.5,
        `the screenshot is the canvas: ${image.width}×${image.height} for ${JSON.stringify(box)}`)
      shots.push({
        chart: await canvas.getAttribute('data-chart'),
        node: countColour(image, [0x25, 0x63, 0xeb], 30),
        backlog: countColour(image, [0x4b, 0x55, 0x63], 20),
        white: countColour(image, [0xff, 0xff, 0xff], 3),
        pixels: image.width * image.height
      })
    }
    t.diagnostic(`screenshots: ${JSON.stringify(shots)}`)
    assert.deepEqual(shots.map(s => s.chart), ['connections', 'sends', 'deliveries', 'slow', 'backlog'])
    for (const s of shots) assert.ok(s.white > s.pixels / 2, `chart ${s.chart} is on a white background: ${JSON.stringify(s)}`)
    for (const s of shots.slice(0, 4)) assert.ok(s.node > 10, `the screenshot of chart ${s.chart} shows the node's line: ${JSON.stringify(s)}`)
    assert.ok(shots[4].backlog > 20 && shots[4].node === 0, `the screenshot of the backlog chart shows its line only: ${JSON.stringify(shots[4])}`)
    // Set ADMIN_SCREENSHOT=file.png to keep a screenshot of the whole page.
    if (process.env.ADMIN_SCREENSHOT) writeFileSync(process.env.ADMIN_SCREENSHOT, await page.screenshot({ fullPage: true }))
    assert.deepEqual(page.errors, [], 'page errors')
  } finally {
    await page.context().close()
  }
}))

test('the admin page searches users and connections, sends a test event and kicks, after confirmation', t => withSetup(t, async ({ pushd, page: ann, browser }) => {
  await createClient(ann, { listeners: ['admin-test', 'connect-close'], options: { query: { userId: USER, name: 'Ann' } } })
  await waitActive(ann)
  const annConn = await ann.evaluate(() => window.client.connectionId)
  const { page: bob, context: bobContext } = await openPage(browser, pushd)
  const page = await openAdmin(browser, pushd)
  try {
    await createClient(bob, { listeners: ['admin-test', 'connect-close'], options: { query: { userId: 'u2', name: 'Bob' } } })
    await waitActive(bob)
    const bobConn = await bob.evaluate(() => window.client.connectionId)
    await eventually(async () => (await rows(page, 'connections')).length === 2, { what: 'both connections listed' })

    // Search by exact user id, then by part of the name (ignoring case); clearing lists everyone again.
    const search = async (userId, name) => {
      await page.fill('section[data-app="demo"] input[name="userId"]', userId)
      await page.fill('section[data-app="demo"] input[name="name"]', name)
      await page.click('section[data-app="demo"] form.search button:not([type])')
    }
    const listed = async () => ({ users: (await rows(page, 'users')).map(r => r[0]), conns: (await rows(page, 'connections')).map(r => r[0]) })
    await search(USER, '')
    await eventually(async () => JSON.stringify(await listed()) === JSON.stringify({ users: [USER], conns: [annConn] }), { what: 'the search by user id' })
    await search('', 'bO')
    await eventually(async () => JSON.stringify(await listed()) === JSON.stringify({ users: ['u2'], conns: [bobConn] }), { what: 'the search by name' })
    assert.match(await page.locator('section[data-app="demo"] .pager').last().textContent(), /1–1 of 1 connection/)
    await page.click('section[data-app="demo"] form.search button[type="reset"]')
    await eventually(async () => (await listed()).users.length === 2, { what: 'the cleared search' })

    // A cancelled send sends nothing, a confirmed one reaches Ann's stream (events keep their order:
    // had the cancelled one been sent, it would come first).
    await act(page, 'users', { 'user-id': USER }, 'send', 'cancel')
    await act(page, 'users', { 'user-id': USER }, 'send', 'ok', { data: 'hello from the admin page' })
    const got = await waitEvents(ann, 'admin-test')
    assert.equal(got[0].data, 'hello from the admin page')
    await page.locator('section[data-app="demo"] .status.ok').filter({ hasText: 'delivered to 1 connection(s)' }).waitFor({ timeout: 5000 })
    assert.equal((await ann.evaluate(() => window.__got('admin-test'))).length, 1)

    // Kicking Ann's connection, after confirmation, closes it: the client is told and stays closed.
    await act(page, 'connections', { 'connection-id': annConn }, 'kick', 'ok')
    const [close] = await waitEvents(ann, 'connect-close')
    assert.equal(close.info.reason, 'kicked')
    await page.locator('section[data-app="demo"] .status.ok').filter({ hasText: 'closed 1 connection(s)' }).waitFor({ timeout: 5000 })
    await eventually(async () => JSON.stringify((await rows(page, 'connections')).map(r => r[0])) === JSON.stringify([bobConn]), { what: 'the kicked connection to leave the table' })
    assert.equal(await ann.evaluate(() => window.__openSources()), 0)
    assert.deepEqual((await pushd.connections()).list.map(c => c.id), [bobConn])

    // A wrong token is refused for actions, and so is the right one in a cookie instead of the header.
    const refused = await page.evaluate(async connectionId => {
      const body = JSON.stringify({ app: 'demo', connectionId })
      const wrong = await fetch('api/kick', { method: 'POST', headers: { Authorization: 'Bearer wrong', 'Content-Type': 'application/json' }, body })
      document.cookie = 'pushd-admin-token=admin-secret; path=/'
      const cookie = await fetch('api/send', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body })
      return [wrong.status, (await wrong.json()).error, cookie.status]
    }, bobConn)
    assert.deepEqual(refused, [401, 'invalid admin token', 401])
    // From the page: with a wrong token in store, the kick is refused and the page asks for the token.
    await act(page, 'connections', { 'connection-id': bobConn }, 'kick', 'ok',
      { before: () => page.evaluate(() => sessionStorage.setItem('pushd-admin-token', 'wrong')) })
    await page.waitForFunction(() => document.querySelector('#login-error').textContent.includes('invalid admin token'), null, { timeout: 10000 })
    assert.deepEqual((await pushd.connections()).list.map(c => c.id), [bobConn])
    assert.equal((await bob.evaluate(() => window.__got('connect-close'))).length, 0)
    assert.deepEqual(page.errors, [], 'page errors')
  } finally {
    await page.context().close()
    await bobContext.close()
  }
}))

test('the admin page kicks a user, every connection of the user, after confirmation', t => withSetup(t, async ({ pushd, page: tab1, browser }) => {
  // Ann has two tabs open (two connections), Bob one.
  const { page: tab2, context: tab2Context } = await openPage(browser, pushd)
  const { page: bob, context: bobContext } = await openPage(browser, pushd)
  const page = await openAdmin(browser, pushd)
  try {
    for (const [tab, userId] of [[tab1, USER], [tab2, USER], [bob, 'u2']]) {
      await createClient(tab, { listeners: ['connect-close'], options: { query: { userId } } })
      await waitActive(tab)
    }
    const bobConn = await bob.evaluate(() => window.client.connectionId)
    await eventually(async () => (await rows(page, 'connections')).length === 3, { what: 'the three connections listed' })
    await eventually(async () => JSON.stringify((await rows(page, 'users')).map(r => [r[0], r[3]])) === JSON.stringify([[USER, '2'], ['u2', '1']]),
      { what: "Ann's two connections counted in the users table" })

    // The dialog names the user; cancelled, nothing is closed.
    await act(page, 'users', { 'user-id': USER }, 'kick', 'cancel', {
      before: async () => assert.equal(await page.locator('#confirm-title').textContent(), `Kick user ${USER}?`)
    })
    assert.equal((await pushd.connections()).total, 3)

    // Confirmed, both of Ann's connections close (each tab is told, reason kicked, and stays closed);
    // Bob's stays.
    await act(page, 'users', { 'user-id': USER }, 'kick', 'ok')
    for (const tab of [tab1, tab2]) {
      const [close] = await waitEvents(tab, 'connect-close')
      assert.equal(close.info.reason, 'kicked')
    }
    await page.locator('section[data-app="demo"] .status.ok').filter({ hasText: `kicked user ${USER}: closed 2 connection(s)` }).waitFor({ timeout: 5000 })
    await eventually(async () => JSON.stringify((await rows(page, 'users')).map(r => r[0])) === JSON.stringify(['u2']), { what: 'the kicked user to leave the table' })
    assert.deepEqual((await rows(page, 'connections')).map(r => r[0]), [bobConn])
    assert.deepEqual((await pushd.connections()).list.map(c => c.id), [bobConn])
    for (const tab of [tab1, tab2]) assert.equal(await tab.evaluate(() => window.__openSources()), 0)
    assert.equal((await bob.evaluate(() => window.__got('connect-close'))).length, 0)
    assert.equal(await bob.evaluate(() => window.client.isActive()), true)
    assert.deepEqual(page.errors, [], 'page errors')
  } finally {
    await page.context().close()
    await tab2Context.close()
    await bobContext.close()
  }
}))

test('in a cluster the admin page of one node charts every node and acts on the others', async t => {
  const [peerA, peerB] = [await freePort(), await freePort()]
  const config = id => () => `
node_id: ${id}
cluster: {transport: nacos, secret: "browser-cluster-secret-0123456789", peers: [node-a@127.0.0.1:${peerA}, node-b@127.0.0.1:${peerB}], peer_listen: "127.0.0.1:${id === 'node-a' ? peerA : peerB}", timeout: 2s}
admin: {token: ${ADMIN_TOKEN}}
apps:
  - name: demo
    path: /sse/demo
    auth: {mode: demo}
    api_keys: [demo-key]
`
  const b = await Pushd.start(config('node-b'))
  try {
    await withSetup(t, async ({ pushd: a, browser }) => {
      // The client is on node B, the admin page on node A.
      const { page: client, context } = await openPage(browser, b)
      const page = await openAdmin(browser, a)
      try {
        await createClient(client, { listeners: ['admin-test', 'connect-close'] })
        await waitActive(client)
        const connectionId = await client.evaluate(() => window.client.connectionId)
        await eventually(async () => JSON.stringify((await rows(page, 'connections')).map(r => [r[0], r[3]])) === JSON.stringify([[connectionId, 'node-b']]),
          { what: "node B's connection listed by node A" })
        assert.deepEqual((await rows(page, 'nodes')).map(r => r[0]), ['node-a', 'node-b'])
        await page.waitForFunction(() => Number(document.querySelector('canvas[data-chart="connections"]').dataset.points) >= 4, null, { timeout: 20000, polling: 100 })
        // One line per node: node-a's blue at 0, node-b's red at 1.
        const colours = await page.locator('canvas[data-chart="connections"]').evaluate(c => {
          const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height)
          const near = (i, [r, g, b]) => data[i + 3] > 200 && Math.abs(data[i] - r) < 30 && Math.abs(data[i + 1] - g) < 30 && Math.abs(data[i + 2] - b) < 30
          let blue = 0
          let red = 0
          for (let i = 0; i < data.length; i += 4) {
            if (near(i, [0x25, 0x63, 0xeb])) blue++
            if (near(i, [0xdc, 0x26, 0x26])) red++
          }
          return { blue, red }
        })
        assert.ok(colours.blue > 20 && colours.red > 20, JSON.stringify(colours))
        assert.deepEqual(await page.locator('.legend span').allTextContents(), ['node-a', 'node-b'])
        if (process.env.ADMIN_SCREENSHOT) writeFileSync(process.env.ADMIN_SCREENSHOT.replace(/(\.png)?$/, '-cluster.png'), await page.screenshot())

        await act(page, 'users', { 'user-id': USER }, 'send', 'ok', { data: 'across the cluster' })
        const [got] = await waitEvents(client, 'admin-test')
        assert.equal(got.data, 'across the cluster')
        await act(page, 'connections', { 'connection-id': connectionId }, 'kick', 'ok')
        const [close] = await waitEvents(client, 'connect-close')
        assert.equal(close.info.reason, 'kicked')
        await eventually(async () => (await b.connections()).total === 0, { what: 'the connection on node B to close' })
        assert.deepEqual(page.errors, [], 'page errors')
      } finally {
        await page.context().close()
        await context.close()
      }
    }, config('node-a'))
  } catch (e) {
    t.diagnostic(`node B log:\n${b.log}`)
    throw e
  } finally {
    await b.stop()
  }
})

test('the admin page pages through users and connections', t => withSetup(t, async ({ pushd, browser }) => {
  // 27 streams of 27 users, opened from node: more than one page of 25.
  const ctl = new AbortController()
  const ids = Array.from({ length: 27 }, (_, i) => `p${String(i).padStart(2, '0')}`)
  // Kept referenced to the end: node's fetch cancels the body of a response that is garbage
  // collected, which closed streams at random (the cleanup then disconnected fewer than 27).
  const streams = []
  try {
    for (const id of ids) {
      const r = await fetch(`${pushd.origin}/sse/demo/connect?userId=${id}&name=Pat${id}`, { signal: ctl.signal })
      assert.equal(r.status, 200)
      streams.push(r)
    }
    const page = await openAdmin(browser, pushd)
    try {
      const pager = page.locator('section[data-app="demo"] .pager')
      await eventually(async () => (await rows(page, 'users')).length === 25, { what: 'the first page of users' })
      assert.deepEqual((await rows(page, 'users')).map(r => r[0]), ids.slice(0, 25))
      assert.equal(await pager.nth(0).locator('span').textContent(), '1–25 user(s), more follow')
      assert.equal(await pager.nth(1).locator('span').textContent(), '1–25 of 27 connection(s)')
      assert.equal(await pager.nth(0).locator('button').first().isDisabled(), true)

      await pager.nth(0).locator('button', { hasText: 'next' }).click()
      await pager.nth(1).locator('button', { hasText: 'next' }).click()
      await eventually(async () => JSON.stringify((await rows(page, 'users')).map(r => r[0])) === JSON.stringify(ids.slice(25)), { what: 'the second page of users' })
      await eventually(async () => JSON.stringify((await rows(page, 'connections')).map(r => r[2])) === JSON.stringify(['Patp25', 'Patp26']), { what: 'the second page of connections' })
      assert.equal(await pager.nth(1).locator('span').textContent(), '26–27 of 27 connection(s)')
      assert.equal(await pager.nth(1).locator('button', { hasText: 'next' }).isDisabled(), true)
      await pager.nth(1).locator('button', { hasText: 'previous' }).click()
      await eventually(async () => (await rows(page, 'connections')).length === 25, { what: 'the first page of connections again' })
      assert.deepEqual(page.errors, [], 'page errors')
    } finally {
      await page.context().close()
    }
  } finally {
    // Closed by the server, the streams do not hold up pushd's drain.
    assert.deepEqual(await pushd.api('POST', '/disconnect', { userIds: ids }), { status: 200, body: { disconnected: streams.length } })
    ctl.abort()
  }
}))

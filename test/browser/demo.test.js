// The embedded demo page (`pushd` without --config, served at /) in chromium at 1280×800: every
// control is clicked and its visible result checked; no panel may overflow the screen.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pushd, useBrowser, currentBrowser, eventually } from './harness.js'

useBrowser()

const VIEWPORT = { width: 1280, height: 800 }
const SCREENSHOTS = process.env.PUSHD_SCREENSHOT_DIR || tmpdir()
// What chromium logs by itself for a refused EventSource or fetch.
const BROWSER_NOISE = /Failed to load resource|EventSource's response has a MIME type/

/** Runs body with the embedded demo and its page open in a fresh 1280×800 context. */
async function withDemo (t, body) {
  const pushd = await Pushd.startEmbedded()
  const context = await currentBrowser().newContext({ viewport: VIEWPORT })
  const page = await context.newPage()
  const errors = []
  page.on('pageerror', e => errors.push(String(e)))
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()) })
  try {
    await page.goto(`${pushd.origin}/`)
    await body({ pushd, page })
    assert.deepEqual(errors.filter(e => !BROWSER_NOISE.test(e)), [], 'page errors')
  } catch (e) {
    t.diagnostic(`pushd log:\n${pushd.log}`)
    throw e
  } finally {
    await context.close()
    await pushd.stop()
  }
}

/** Waits until a line of the log element (#inbox, #results) matches re; returns its text. */
async function line (page, log, re) {
  try {
    const h = await page.waitForFunction(([log, src]) => [...document.querySelectorAll(`${log} > div`)].map(d => d.textContent).find(t => new RegExp(src).test(t)),
      [log, re.source], { timeout: 10000, polling: 50 })
    return h.jsonValue()
  } catch (e) {
    throw new Error(`no line of ${log} matches ${re}; it has:\n${await page.textContent(log)}`)
  }
}

/** Waits until the text of selector matches re. */
async function shows (page, selector, re) {
  try {
    await page.waitForFunction(([s, src]) => new RegExp(src).test(document.querySelector(s).textContent), [selector, re.source], { timeout: 10000, polling: 50 })
  } catch (e) {
    throw new Error(`${selector} shows ${JSON.stringify(await page.textContent(selector))}, not ${re}`)
  }
}

/** What overflows the viewport or its own box: the page, a panel, a row or a log. */
function overflows (page) {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth
    const bad = []
    if (document.documentElement.scrollWidth > vw) bad.push(`the page is ${document.documentElement.scrollWidth} px wide, the screen ${vw}`)
    for (const el of document.querySelectorAll('header, section, .row, .log, textarea')) {
      const name = el.id || el.tagName.toLowerCase() + '.' + el.className
      const r = el.getBoundingClientRect()
      if (r.left < 0 || r.right > vw) bad.push(`${name} spans x ${Math.round(r.left)}..${Math.round(r.right)} of 0..${vw}`)
      if (el.scrollWidth > el.clientWidth + 1) bad.push(`${name} scrolls sideways: ${el.scrollWidth} > ${el.clientWidth}`)
    }
    // Every control and log stays inside its panel.
    for (const panel of document.querySelectorAll('section')) {
      const p = panel.getBoundingClientRect()
      for (const el of panel.querySelectorAll('input, select, textarea, button, .log, .row')) {
        const r = el.getBoundingClientRect()
        if (r.left < p.left - 0.5 || r.right > p.right + 0.5) bad.push(`${el.id || el.tagName.toLowerCase()} sticks out of ${panel.id}: x ${Math.round(r.left)}..${Math.round(r.right)} of ${Math.round(p.left)}..${Math.round(p.right)}`)
      }
    }
    // Two equal columns: the backend panel beside the browser panel; no content widens one.
    const b = document.getElementById('browser').getBoundingClientRect()
    const s = document.getElementById('backend').getBoundingClientRect()
    if (!(s.left >= b.right && s.top === b.top)) bad.push(`the backend panel is not beside the browser panel: ${JSON.stringify({ b, s })}`)
    if (Math.abs(b.width - s.width) > 2) bad.push(`unequal columns: the browser panel is ${Math.round(b.width)} px wide, the backend panel ${Math.round(s.width)}`)
    return bad
  })
}

async function push (page, { kind, to, event, data, qos = false }) {
  await page.selectOption('#kind', kind)
  if (to !== undefined) await page.fill('#to', to)
  await page.fill('#event', event)
  await page.fill('#data', JSON.stringify(data))
  await page.setChecked('#qos', qos)
  await page.click('#push')
}

test('every control of the demo page works and shows its result; nothing overflows at 1280×800', t => withDemo(t, async ({ pushd, page }) => {
  await shows(page, '#status', /^closed$/)
  await page.click('#send')
  await line(page, '#inbox', /connect first/)

  await page.click('#connect')
  await shows(page, '#status', /^connected as alice@acme$/)
  await line(page, '#inbox', /connect-finish \{"connectionId":/)
  await shows(page, '#channels', /^none$/)
  assert.deepEqual(await overflows(page), [], 'after connect')
  const shot = join(SCREENSHOTS, 'pushd-demo-1280x800-connected.png')
  await page.screenshot({ path: shot })
  t.diagnostic(`screenshot: ${shot}`)
  const [conn] = (await pushd.connections()).list
  assert.equal(conn.accessUserId, 'alice')
  assert.equal(conn.accessTenantId, 'acme')
  assert.equal(conn.accessUserName, 'Alice')

  // The browser's own calls: send, then upload (first without a file).
  await page.click('#send')
  await line(page, '#inbox', /send → 200 .*"path":"hello"/)
  await line(page, '#inbox', /server-ack: .*"path":"hello"/)
  await page.click('#upload')
  await line(page, '#inbox', /choose a file first/)
  await page.setInputFiles('#file', { name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('hello, pushd') })
  await page.click('#upload')
  await line(page, '#inbox', /upload → 200 .*"name":"hello.txt","size":12/)

  // The backend panel: every kind of target, QoS, online users, a wrong API key.
  await push(page, { kind: 'userIds', to: 'alice', event: 'greeting', data: { n: 1 } })
  await line(page, '#inbox', /greeting: \{"n":1\}/)
  await line(page, '#results', /send → 200 .*"delivered":1/)
  await push(page, { kind: 'userIds', to: 'alice', event: 'greeting', data: { n: 2 }, qos: true })
  await line(page, '#inbox', /greeting: \{"n":2\}/)
  await push(page, { kind: 'tenantIds', to: 'acme', event: 'news', data: { n: 3 } })
  await line(page, '#inbox', /news: \{"n":3\}/)
  await page.click('#users')
  await line(page, '#results', /users → 200 .*"alice"/)

  // Join a channel: the same connection joins it (subscribe) and the page shows it; a push to the
  // channel arrives. Leave it: a push to it reaches nobody.
  const joinedBy = (await pushd.connections()).list[0].id
  await page.fill('#channel', 'room1')
  await page.click('#join')
  await shows(page, '#channels', /^room1$/)
  await line(page, '#inbox', /subscribe room1 → in room1/)
  assert.deepEqual((await pushd.connections()).list.map(c => [c.id, c.channels]), [[joinedBy, ['room1']]])
  await push(page, { kind: 'channels', to: 'room1', event: 'news', data: { n: 4 } })
  await line(page, '#inbox', /news: \{"n":4\}/)
  await page.click('#leave')
  await shows(page, '#channels', /^none$/)
  await push(page, { kind: 'channels', to: 'room1', event: 'news', data: { n: 4.5 } })
  await line(page, '#results', /send → 200 .*"delivered":0/)
  await page.click('#join')
  await shows(page, '#channels', /^room1$/)
  await push(page, { kind: 'all', event: 'greeting', data: { n: 5 } })
  await line(page, '#inbox', /greeting: \{"n":5\}/)

  await page.fill('#apiKey', 'wrong-key')
  await push(page, { kind: 'all', event: 'greeting', data: { n: 6 } })
  await line(page, '#results', /send → 401 /)
  assert.equal(await page.$eval('#results > div', d => d.className), 'err', 'a refused call is marked')
  assert.deepEqual(await overflows(page), [], 'after every call')
  await page.screenshot({ path: join(SCREENSHOTS, 'pushd-demo-1280x800-used.png') })

  // Listen to another event: the new connection listens to it.
  await page.fill('#listeners', 'alerts')
  await page.fill('#name', 'Alice B.')
  await page.click('#connect')
  await eventually(async () => { const l = (await pushd.connections()).list; return l.length === 1 && l[0].listeners.includes('alerts') && l[0].accessUserName === 'Alice B.' }, { what: 'one connection listening to alerts' })
  // It is in the channel the page had joined.
  await shows(page, '#channels', /^room1$/)
  assert.deepEqual((await pushd.connections()).list[0].channels, ['room1'])
  await page.fill('#apiKey', 'demo-key')
  await push(page, { kind: 'userIds', to: 'alice', event: 'alerts', data: { n: 7 } })
  await line(page, '#inbox', /alerts: \{"n":7\}/)

  await page.click('#close')
  await shows(page, '#status', /^closed$/)
  await eventually(async () => (await pushd.connections()).total === 0, { what: 'the server to drop the closed connection' })

  // The admin link leads to the admin page.
  await Promise.all([page.waitForURL(`${pushd.origin}/admin/`), page.click('header .admin-link')])
}))

test('the demo page shows a refused connect (401) and does not retry until connect is clicked again', t => withDemo(t, async ({ pushd, page }) => {
  let connects = 0
  page.on('request', r => { if (new URL(r.url()).pathname === '/sse/demo/connect') connects++ })
  await page.fill('#userId', '')
  await page.click('#connect')
  await shows(page, '#status', /^refused: 401 .*no user id.*\(fix the form and connect again\)$/)
  assert.equal(await page.$eval('#status', s => s.className), 'status bad')
  await line(page, '#inbox', /connect-error 401: .*no user id/)
  assert.deepEqual(await page.evaluate(() => ({ timer: window.sse.timer, stream: !!window.sse.es })), { timer: 0, stream: false }, 'no reconnect is scheduled')
  assert.equal(connects, 2, 'the stream and one probe')
  assert.deepEqual(await overflows(page), [], 'with the error shown')
  await page.screenshot({ path: join(SCREENSHOTS, 'pushd-demo-1280x800-refused.png') })

  await page.fill('#userId', 'bob')
  await page.click('#connect')
  await shows(page, '#status', /^connected as bob@acme$/)
  assert.equal((await pushd.connections()).list[0].accessUserId, 'bob')
}))

// pushd serving HTTPS and HTTP/2 itself (tls.cert_file/key_file), in chromium: a browser's streams
// and its other requests share one HTTP/2 connection, so more tabs than the six connections per host
// of HTTP/1.1 hold a stream at once (issue 13 §7).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CONFIG, USER, Pushd, workDir, freePort, useBrowser, currentBrowser, createClient, waitActive } from './harness.js'

// The harness checks readiness with node's fetch, which would refuse the test's self-signed
// certificate; this file's process (node --test runs each file alone) accepts it.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'

useBrowser()

/** Writes a self-signed certificate for 127.0.0.1 with openssl; returns the two files. */
function testCertificate () {
  const cert = join(workDir, 'tls-cert.pem')
  const key = join(workDir, 'tls-key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' })
  return { cert, key }
}

async function startTLS () {
  const { cert, key } = testCertificate()
  const port = await freePort()
  const configFile = join(workDir, `pushd-tls-${port}.yaml`)
  writeFileSync(configFile, `tls: {cert_file: ${JSON.stringify(cert)}, key_file: ${JSON.stringify(key)}}\n` + CONFIG)
  const pushd = new Pushd(port, configFile)
  pushd.origin = `https://127.0.0.1:${port}`
  await pushd.start()
  return pushd
}

/** Records, over CDP, the protocol and connection of every answer the page gets from origin. */
async function recordAnswers (page, origin) {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  const answers = []
  cdp.on('Network.responseReceived', e => {
    if (e.response.url.startsWith(origin)) answers.push({ path: new URL(e.response.url).pathname, protocol: e.response.protocol, connection: e.response.connectionId })
  })
  return answers
}

test('ten tabs hold a stream each over one HTTP/2 connection, with the page\'s other requests', async t => {
  const pushd = await startTLS()
  const context = await currentBrowser().newContext({ ignoreHTTPSErrors: true })
  try {
    await context.addCookies([{ name: 'pushd_demo_user', value: USER, url: pushd.origin }])
    const tabs = []
    const answers = []
    for (let i = 0; i < 10; i++) {
      const page = await context.newPage()
      answers.push(await recordAnswers(page, pushd.origin))
      await page.goto(`${pushd.origin}/healthz`)
      await page.setContent('<!doctype html><title>tab</title>')
      await page.evaluate(() => { window.__record = name => e => { (window.__got ||= []).push([name, e.data]) }; window.__bus = () => {} })
      await createClient(page, { module: `${pushd.origin}/sse/demo`, url: `${pushd.origin}/sse/demo`, listeners: ['bell'], options: { clientId: `tab${i}` } })
      tabs.push(page)
    }
    // With HTTP/1.1 the seventh stream would wait for one of the six connections to free up.
    for (const page of tabs) await waitActive(page)
    const sent = await pushd.push('bell', 'over h2')
    assert.equal(sent.delivered, 10)
    for (const page of tabs) {
      await page.waitForFunction(() => (window.__got || []).some(([n, d]) => n === 'bell' && d === 'over h2'), null, { timeout: 10000 })
    }
    // One more request of the first tab, while ten streams are open.
    await tabs[0].evaluate(origin => fetch(`${origin}/healthz`).then(r => r.text()), pushd.origin)
    const all = answers.flat()
    const streams = all.filter(a => a.path === '/sse/demo/connect')
    assert.equal(streams.length, 10, JSON.stringify(all))
    for (const a of all) assert.equal(a.protocol, 'h2', `answer over ${a.protocol}: ${JSON.stringify(a)}`)
    const connections = new Set(all.map(a => a.connection))
    assert.equal(connections.size, 1, `answers came over ${connections.size} connections: ${JSON.stringify(all)}`)
  } catch (e) {
    t.diagnostic(`pushd log:\n${pushd.log}`)
    throw e
  } finally {
    await context.close()
    await pushd.stop()
  }
})

// The npm package of clients/js in a bundled app (node --test): npm pack makes the tarball, a copy
// of app/ installs it offline, tsc checks the app against the package's types, Vite and webpack
// each build the app, vite preview serves both builds on an origin of their own, and chromium runs
// each against a real pushd that allows that origin (cors): connect-finish, an event pushed through
// the server API, a send() answered.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { cpSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build, preview } from 'vite'
import webpack from 'webpack'
import { API_KEYS, CONFIG, Pushd, USER, currentBrowser, freePort, repoRoot, useBrowser, workDir } from '../browser/harness.js'

const here = dirname(fileURLToPath(import.meta.url))
const pkgDir = join(repoRoot, 'clients/js')
const appDir = join(workDir, 'app')
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))

useBrowser()

/** Runs a command, failing with its output. */
function run (cmd, args, cwd) {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} in ${cwd}: ${e.message}\n${e.stdout}${e.stderr}`)
  }
}

let tarball = null

test('npm pack ships only the client, its types, README.md and package.json', () => {
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', workDir], pkgDir))
  assert.equal(packed.name, pkg.name)
  assert.deepEqual(packed.files.map(f => f.path).sort(), ['README.md', 'package.json', 'sse.d.ts', 'sse.js'])
  tarball = join(workDir, packed.filename)
})

test('the app installs the tarball offline, type-checks against the package\'s types, and the package imports in Node', async () => {
  assert.ok(tarball, 'no tarball')
  cpSync(join(here, 'app'), appDir, { recursive: true })
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], appDir)
  const installed = join(appDir, 'node_modules', ...pkg.name.split('/'))
  assert.equal(readFileSync(join(installed, 'sse.js'), 'utf8'), readFileSync(join(pkgDir, 'sse.js'), 'utf8'))
  run(process.execPath, [join(here, 'node_modules/typescript/bin/tsc'), '-p', appDir], appDir)
  // Server-side rendering imports the module where there is no window.
  const { default: Sse } = await import(pathToFileURL(join(installed, 'sse.js')).href)
  assert.equal(Sse.version, pkg.version, 'package.json and Sse.version differ')
})

/** Asserts that the bundle js holds the client, with its registration of window.Sse. */
function assertBundled (js) {
  assert.match(js, /sseAccessTimestamp/, 'the client is not in the bundle')
  assert.match(js, /window\.Sse\s*=/, 'the bundle dropped the window.Sse registration')
}

test('vite builds the app with the client bundled', async () => {
  await build({ root: appDir, configFile: false, logLevel: 'warn' })
  const assets = join(appDir, 'dist/assets')
  assertBundled(readdirSync(assets).filter(f => f.endsWith('.js')).map(f => readFileSync(join(assets, f), 'utf8')).join('\n'))
})

test('webpack builds the same app with the client bundled, into dist/webpack', async () => {
  const out = join(appDir, 'dist/webpack')
  const compiler = webpack({ mode: 'production', devtool: false, context: appDir, entry: './main.js', output: { path: out, filename: 'main.js' } })
  const stats = await new Promise((resolve, reject) => compiler.run((err, stats) => err ? reject(err) : resolve(stats)))
  await new Promise(resolve => compiler.close(resolve))
  assert.ok(!stats.hasErrors() && !stats.hasWarnings(), stats.toString('errors-warnings'))
  assertBundled(readFileSync(join(out, 'main.js'), 'utf8'))
  const page = readFileSync(join(appDir, 'index.html'), 'utf8')
  const webpackPage = page.replace('<script type="module" src="/main.js"></script>', '<script defer src="/webpack/main.js"></script>')
  assert.notEqual(webpackPage, page, 'index.html has no script tag for main.js')
  writeFileSync(join(out, 'index.html'), webpackPage)
})

for (const [bundler, path, script] of [['vite', '/', /\/assets\/index-[\w-]+\.js$/], ['webpack', '/webpack/', /\/webpack\/main\.js$/]]) {
  test(`in chromium the ${bundler} build connects, gets an event pushed through the API and has a send() answered`, async t => {
    const port = await freePort()
    // mpa: no fallback to the Vite build's index.html for a path without its own.
    const site = await preview({ root: appDir, configFile: false, appType: 'mpa', logLevel: 'warn', preview: { host: '127.0.0.1', port, strictPort: true } })
    try {
      const requests = await runApp(t, `http://127.0.0.1:${port}`, path)
      assert.ok(requests.some(u => script.test(u)), `the page did not load the ${bundler} bundle: ${requests}`)
    } finally {
      await site.close()
    }
  })
}

/**
 * Opens the app at path on origin in chromium against a fresh pushd that allows that origin and
 * checks it works; returns the URLs the page requested.
 */
async function runApp (t, origin, path) {
  const pushd = await Pushd.start(() => CONFIG.replace('    enable_json_endpoints: true\n', `    enable_json_endpoints: true\n    cors: [${origin}]\n`))
  const context = await currentBrowser().newContext()
  try {
    const base = `${pushd.origin}/sse/demo`
    // The server serves the very file the package ships.
    assert.equal(await (await fetch(base)).text(), readFileSync(join(pkgDir, 'sse.js'), 'utf8'))

    const page = await context.newPage()
    const errors = []
    const requests = []
    page.on('pageerror', e => errors.push(String(e)))
    page.on('console', m => { if (m.type() === 'error') errors.push(m.text()) })
    page.on('request', r => requests.push(r.url()))
    page.on('response', r => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`) })
    await page.goto(`${origin}${path}?${new URLSearchParams({ pushd: base, userId: USER })}`)
    await page.waitForFunction(() => window.app && window.app.client.isActive(), null, { timeout: 15000, polling: 50 })
    assert.match(await page.textContent('#state'), /^connected to \S+ as \S+$/)
    assert.equal(await page.textContent('#version'), pkg.version, 'package.json and Sse.version differ')
    assert.equal(await page.evaluate(() => window.Sse === window.app.client.constructor), true, 'window.Sse is not the bundled class')
    const finish = JSON.parse(await page.textContent('li[data-event="connect-finish"]'))
    assert.equal(finish.connectionId, await page.evaluate(() => window.app.client.connectionId))

    const sent = await fetch(`${pushd.origin}/api/v1/apps/demo/send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEYS.demo}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: { userIds: [USER] }, event: 'bell', data: { from: 'api' } })
    })
    assert.equal(sent.status, 200, await sent.clone().text())
    const bell = await page.waitForSelector('li[data-event="bell"]', { timeout: 10000 })
    assert.deepEqual(JSON.parse(await bell.textContent()), { from: 'api' })

    // pushd's echo upstream (an app without backend) answers with what the call carried and pushes
    // it back to the connection as server-ack.
    const answer = await page.evaluate(() => window.app.ping(7))
    assert.equal(answer.status, 200)
    assert.deepEqual(answer.body.data.body, { n: 7 })
    assert.equal(answer.body.data.path, 'ping')
    assert.equal(answer.body.data.connectionId, finish.connectionId)
    const ack = await page.waitForSelector('li[data-event="server-ack"]', { timeout: 10000 })
    assert.deepEqual(JSON.parse(await ack.textContent()).body, { n: 7 })

    assert.deepEqual(requests.filter(u => /\/sse\/demo(\/sse\.js)?(\?|$)/.test(u)), [], 'the page loaded the client from pushd')
    assert.deepEqual(errors, [], 'page errors')
    return requests
  } catch (e) {
    t.diagnostic(`pushd log:\n${pushd.log}`)
    throw e
  } finally {
    await context.close()
    await pushd.stop()
  }
}

// The admin page (/admin/) in chromium against a real pushd (node --test).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { USER, ADMIN_TOKEN, useBrowser, withSetup, createClient, waitActive, eventually } from './harness.js'

useBrowser()

test('the admin page asks for the token, then shows nodes, online users and connections, live', t => withSetup(t, async ({ pushd, page: client, browser }) => {
  const context = await browser.newContext()
  try {
    await createClient(client, { listeners: ['server-push'] })
    await waitActive(client)
    const connectionId = await client.evaluate(() => window.client.connectionId)

    const page = await context.newPage()
    const errors = []
    page.on('pageerror', e => errors.push(String(e)))
    await page.goto(`${pushd.origin}/admin`) // redirected to /admin/
    assert.equal(new URL(page.url()).pathname, '/admin/')

    // A wrong token is refused and the page asks again.
    await page.fill('#token', 'wrong')
    await page.click('#login-form button')
    await page.waitForFunction(() => document.querySelector('#login-error').textContent.includes('invalid admin token'), null, { timeout: 10000 })
    assert.equal(await page.isVisible('#login'), true)

    await page.fill('#token', ADMIN_TOKEN)
    await page.click('#login-form button')
    const demo = page.locator('section[data-app="demo"]')
    await demo.waitFor({ timeout: 10000 })
    assert.equal(await page.isVisible('#login'), false)
    assert.match(await demo.locator('h2').textContent(), /1 node\(s\), 1 user\(s\), 1 connection\(s\)/)
    const node = demo.locator('table').nth(0).locator('tbody tr')
    assert.equal(await node.locator('td').nth(0).textContent(), 'browser-test')
    assert.equal(await node.locator('td').nth(1).textContent(), '1')
    const user = demo.locator('table').nth(1).locator('tbody tr')
    assert.equal(await user.locator('td').nth(0).textContent(), USER)
    const conn = demo.locator('table').nth(2).locator('tbody tr')
    assert.equal(await conn.locator('td').nth(0).textContent(), connectionId)
    assert.equal(await conn.locator('td').nth(4).textContent(), 'server-push')

    // Without reloading, the counters follow a send.
    const sendsBefore = Number(await node.locator('td').nth(5).textContent())
    await pushd.push('server-push', { from: 'admin test' })
    await eventually(async () => Number(await node.locator('td').nth(5).textContent()) === sendsBefore + 1,
      { what: 'the sends column to count the push' })

    // Forgetting the token returns to the prompt and stops showing data.
    await page.click('#logout')
    assert.equal(await page.isVisible('#login'), true)
    assert.equal(await page.locator('section[data-app]').count(), 0)
    assert.deepEqual(errors, [], 'page errors')
  } finally {
    await context.close()
  }
}))

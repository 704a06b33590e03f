// The JS contract check (contract.js) that Pushd.api applies to every call of the browser tests:
// what it lets through and what it catches, without a browser; then a real pushd's answers.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { Contract } from './contract.js'
import { Pushd, repoRoot, workDir, contractCalls } from './harness.js'

after(() => rmSync(workDir, { recursive: true, force: true }))

const contract = new Contract(repoRoot)
const json = 'application/json'
const send = { to: { userIds: ['u1'] }, event: 'bell', data: { n: 1 } }

test('the contract check passes documented exchanges and names their operation', () => {
  const cases = [
    [{ method: 'POST', path: '/api/v1/apps/demo/send', requestBody: send, status: 200, contentType: json, body: '{"delivered":1,"stored":false}' }, 'POST /api/v1/apps/{app}/send'],
    // A refused bad request is fine: tests send them on purpose.
    [{ method: 'POST', path: '/api/v1/apps/demo/send', requestBody: { to: {} }, status: 400, contentType: json, body: '{"error":"to: the target addresses nobody"}' }, 'POST /api/v1/apps/{app}/send'],
    [{ method: 'GET', path: '/api/v1/apps/demo/channels/room-1/presence', status: 404, contentType: json, body: '{"error":"unknown app \\"demo\\""}' }, 'GET /api/v1/apps/{app}/channels/{name}/presence'],
    [{ method: 'GET', path: '/api/v1/apps/demo/connections', status: 200, contentType: 'application/json; charset=utf-8', body: '{"total":0,"pageNum":1,"pageSize":100,"timeout":false,"list":[]}' }, 'GET /api/v1/apps/{app}/connections']
  ]
  for (const [ex, op] of cases) assert.equal(contract.check(ex), op)
})

test('the contract check catches answers and accepted requests the contract does not document', () => {
  const cases = [
    [{ method: 'POST', path: '/api/v1/apps/demo/send', requestBody: send, status: 200, contentType: json, body: '{"delivered":"1"}' }, /does not match its schema/],
    [{ method: 'POST', path: '/api/v1/apps/demo/send', requestBody: { ...send, bogus: 1 }, status: 200, contentType: json, body: '{"delivered":1,"stored":false}' }, /accepted a request body the contract refuses/],
    [{ method: 'GET', path: '/api/v1/apps/demo/connections', status: 418, contentType: json, body: '{}' }, /status 418 is not documented/],
    [{ method: 'GET', path: '/api/v1/apps/demo/connections', status: 401, contentType: json, body: '{"error":"x","extra":1}' }, /does not match its schema/],
    [{ method: 'GET', path: '/api/v1/apps/demo/connections', status: 200, contentType: 'text/plain', body: 'ok' }, /media type text\/plain is not documented/],
    [{ method: 'GET', path: '/api/v1/apps/demo/connections', status: 200, contentType: json, body: '{"total":0,' }, /not JSON/],
    [{ method: 'GET', path: '/api/v1/apps/demo/nothing', status: 404, contentType: json, body: '{"error":"x"}' }, /no operation GET/],
    [{ method: 'DELETE', path: '/api/v1/apps/demo/send', status: 404, contentType: json, body: '{"error":"x"}' }, /no operation DELETE/]
  ]
  for (const [ex, want] of cases) assert.throws(() => contract.check(ex), want, `${ex.method} ${ex.path} ${ex.status} ${ex.body}`)
})

test('the calls of Pushd.api to a real pushd are checked against the contract', async () => {
  const pushd = await Pushd.start()
  try {
    contractCalls.clear()
    assert.equal((await pushd.api('POST', '/send', send)).status, 200)
    assert.equal((await pushd.api('POST', '/send', { to: {} })).status, 400)
    assert.equal((await pushd.api('GET', '/connections?pageNum=1&pageSize=5')).status, 200)
    assert.equal((await pushd.api('GET', '/users')).status, 200)
    assert.equal((await pushd.api('GET', '/messages')).status, 200)
    assert.equal((await pushd.api('GET', '/stats')).status, 200)
    assert.equal((await pushd.api('POST', '/disconnect', { userIds: ['nobody'] })).status, 200)
    assert.equal((await pushd.api('GET', '/channels/room-1/presence')).status, 200)
    assert.deepEqual(Object.fromEntries(contractCalls), {
      'POST /api/v1/apps/{app}/send': 2,
      'GET /api/v1/apps/{app}/connections': 1,
      'GET /api/v1/apps/{app}/users': 1,
      'GET /api/v1/apps/{app}/messages': 1,
      'GET /api/v1/apps/{app}/stats': 1,
      'POST /api/v1/apps/{app}/disconnect': 1,
      'GET /api/v1/apps/{app}/channels/{name}/presence': 1
    })
    // An operation the contract does not have fails the call, whatever pushd answered.
    await assert.rejects(pushd.api('GET', '/nothing-here'), /no operation GET \/api\/v1\/apps\/demo\/nothing-here/)
  } finally {
    await pushd.stop()
  }
})

// @ts-check
// A minimal app on the npm package @pushd/client, built by Vite and by webpack (plain JavaScript, so
// neither needs a loader; tsc checks it against the package's types): connects to the pushd app
// whose base URL is ?pushd= (as ?userId=, default u1, through demo authentication), lists the
// events it receives, and offers window.app.ping, a send() through the connection.
import Sse from '@pushd/client'

/** @typedef {import('@pushd/client').SseMessageEvent} SseMessageEvent */

const params = new URLSearchParams(location.search)
const state = /** @type {HTMLElement} */ (document.getElementById('state'))
const list = /** @type {HTMLElement} */ (document.getElementById('events'))
;/** @type {HTMLElement} */ (document.getElementById('version')).textContent = Sse.version

/** @param {SseMessageEvent} e */
function show (e) {
  const li = document.createElement('li')
  li.dataset.event = e.type
  li.textContent = String(e.data)
  list.append(li)
}

const client = new Sse({
  url: params.get('pushd') ?? '/sse/demo',
  query: { userId: params.get('userId') ?? 'u1' },
  reconnectTime: 200,
  eventListeners: {
    /** @this {Sse} @param {SseMessageEvent} e */
    'connect-finish': function (e) {
      const r = this.connectResponse
      state.textContent = `connected to ${r?.name} as ${r?.connectionId}`
      show(e)
    },
    bell: show,
    'server-ack': show
  }
})

window.app = {
  client,
  async ping (n) {
    const r = await client.send('ping', { n })
    return { status: r.status, body: await r.json() }
  }
}

// A minimal Vite app on the npm package @pushd/client: connects to the pushd app whose base URL is
// ?pushd= (as ?userId=, default u1, through demo authentication), lists the events it receives, and
// offers window.app.ping, a send() through the connection.
import Sse, { type SseConnectResponse, type SseMessageEvent } from '@pushd/client'

const params = new URLSearchParams(location.search)
const state = document.getElementById('state') as HTMLElement
const list = document.getElementById('events') as HTMLElement
;(document.getElementById('version') as HTMLElement).textContent = Sse.version

function show (e: SseMessageEvent): void {
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
    'connect-finish': function (this: Sse, e: SseMessageEvent) {
      const r = this.connectResponse as SseConnectResponse
      state.textContent = `connected to ${r.name} as ${r.connectionId}`
      show(e)
    },
    bell: show,
    'server-ack': show
  }
})

/** What the test drives: the client, and a send whose answer it reads. */
interface App {
  client: Sse
  ping: (n: number) => Promise<{ status: number, body: unknown }>
}

declare global {
  interface Window { app: App }
}

window.app = {
  client,
  async ping (n) {
    const r = await client.send('ping', { n })
    return { status: r.status, body: await r.json() }
  }
}

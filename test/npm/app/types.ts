// Checked by tsc, not bundled: what main.js gives the test, and that the package's types reject what
// the client does not take.
import Sse from '@pushd/client'

declare global {
  interface Window {
    /** The client, and a send whose answer the test reads. */
    app: { client: Sse, ping: (n: number) => Promise<{ status: number, body: unknown }> }
  }
}

// @ts-expect-error url is a string
void new Sse({ url: 1 })
// @ts-expect-error a send's query is a record of strings
void new Sse().send('x', {}, { n: 1 })
// @ts-expect-error state is read-only
new Sse().state = 1

// Checked by tsc, not bundled: the package's types reject what the client does not take.
import Sse from '@pushd/client'

// @ts-expect-error url is a string
void new Sse({ url: 1 })
// @ts-expect-error a send's query is a record of strings
void new Sse().send('x', {}, { n: 1 })
// @ts-expect-error state is read-only
new Sse().state = 1

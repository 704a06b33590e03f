// The server API's contract (api/openapi.yaml) in JS: every call the browser tests make through
// Pushd.api (pushd.push, pushd.connections, …) is checked against it, like the Go end-to-end tests'
// checkContract (api/contract): the operation must exist, its answer's status must be documented,
// and the answer's body must match the schema of its status and media type; a request body the
// contract refuses must have been refused (4xx/5xx). Query parameters and headers are left to the
// Go side, which calls every operation (test/openapi_test.go). JSON Schema 2020-12 (what OpenAPI
// 3.1 schemas are) is checked by ajv.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Ajv2020 from 'ajv/dist/2020.js'
import { parse } from 'yaml'

const ID = 'https://pushd.invalid/api/openapi.yaml'

/** A checker of exchanges against the contract in the repository at root. */
export class Contract {
  constructor (root) {
    this.spec = parse(readFileSync(join(root, 'api/openapi.yaml'), 'utf8'))
    // strict: false lets the OpenAPI-only keywords (example, discriminator, …) through; formats
    // are annotations in 2020-12 and in the Go validator's use.
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false })
    this.ajv.addSchema({ ...this.spec, $id: ID })
    this.validators = new Map()
    this.paths = Object.keys(this.spec.paths).map(template => ({
      template,
      re: new RegExp('^' + template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+') + '$')
    }))
  }

  /** The operation of METHOD path as "METHOD template", with its pointer in the document, or null. */
  operation (method, path) {
    const m = method.toLowerCase()
    // A template without wildcards wins over one with (…/channels over …/{app}), as in the router.
    const matches = this.paths.filter(p => p.re.test(path) && this.spec.paths[p.template][m])
    matches.sort((a, b) => (a.template.match(/\{/g) || []).length - (b.template.match(/\{/g) || []).length)
    if (!matches.length) return null
    const { template } = matches[0]
    return { name: `${method.toUpperCase()} ${template}`, op: this.spec.paths[template][m], pointer: ['paths', template, m] }
  }

  /** Follows a local $ref (#/components/…) to [object, pointer]. */
  deref (obj, pointer) {
    while (obj && obj.$ref) {
      pointer = obj.$ref.replace(/^#\//, '').split('/').map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      obj = pointer.reduce((o, k) => o?.[k], this.spec)
    }
    return [obj, pointer]
  }

  /** Validates value against the schema at pointer (a list of keys); returns the errors or null. */
  validate (pointer, value) {
    const ref = ID + '#/' + pointer.map(k => String(k).replace(/~/g, '~0').replace(/\//g, '~1')).map(encodeURIComponent).join('/')
    let v = this.validators.get(ref)
    if (!v) this.validators.set(ref, (v = this.ajv.compile({ $ref: ref })))
    return v(value) ? null : v.errors
  }

  /** The schema pointer of a content map's media type (ignoring parameters), or null. */
  schemaOf (content, pointer, contentType) {
    const type = (contentType || '').split(';')[0].trim() || 'application/json'
    if (!content?.[type]?.schema) return null
    return [...pointer, 'content', type, 'schema']
  }

  /**
   * Checks one exchange: {method, path (no query), requestBody (a value or undefined), status,
   * contentType, body (the answer's text)}; returns the operation's name, throws what breaks the
   * contract.
   */
  check ({ method, path, requestBody, status, contentType, body }) {
    const found = this.operation(method, path)
    if (!found) throw new Error(`contract: no operation ${method} ${path} in api/openapi.yaml`)
    const { name, op, pointer } = found
    const fail = (what, errors) => {
      throw new Error(`contract: ${name} answered ${status} ${String(body).slice(0, 500)}: ${what}${errors ? ': ' + JSON.stringify(errors).slice(0, 1000) : ''}`)
    }

    // The request: a body the contract refuses must not be accepted.
    if (requestBody !== undefined && status < 400) {
      const [rb, rbPointer] = this.deref(op.requestBody, [...pointer, 'requestBody'])
      const at = rb && this.schemaOf(rb.content, rbPointer, 'application/json')
      if (!at) fail('a request body the operation does not take was accepted')
      const errors = this.validate(at, requestBody)
      if (errors) fail(`accepted a request body the contract refuses (${JSON.stringify(requestBody).slice(0, 300)})`, errors)
    }

    // The answer: a documented status, and a body of its schema.
    const responses = op.responses || {}
    const key = [String(status), `${String(status)[0]}XX`, 'default'].find(k => responses[k])
    if (!key) fail(`status ${status} is not documented (${Object.keys(responses).join(', ')})`)
    const [response, responsePointer] = this.deref(responses[key], [...pointer, 'responses', key])
    if (!response.content) {
      if (body !== '') fail('a body where the contract documents none')
      return name
    }
    const at = this.schemaOf(response.content, responsePointer, contentType)
    if (!at) fail(`media type ${contentType} is not documented (${Object.keys(response.content).join(', ')})`)
    const values = /x-ndjson/.test(contentType || '')
      ? body.split('\n').filter(l => l.trim() !== '')
      : [body]
    for (const text of values) {
      let value
      try { value = JSON.parse(text) } catch (e) { fail(`not JSON: ${e.message}`) }
      const errors = this.validate(at, value)
      if (errors) fail('the answer does not match its schema', errors)
    }
    return name
  }
}

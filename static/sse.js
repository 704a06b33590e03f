// placeholder until the browser client lands
class Sse {
  constructor(options) { this.options = options }
}

// Refresh helper for tests/data/destination/fql-*.json (docs/mapping.md).
// Usage, with fql.test.ts and validate.test.ts from
// packages/destination-subscriptions/src/__tests__ in the current directory:
//   node record-fql-cases.js   -> out.json {parse: [...], validate: [...]}
// It records the literal inputs and expectations of those test files with
// parseFql/validate stubbed out: nothing of the library under test runs.
const fs = require('fs')
const out = { parse: [], validate: [] }
let current = null
global.test = (name, fn) => { current = name; fn() }
const marker = (kind, args) => ({ __call: kind, args })
global.parseFql = (fql) => marker('parse', [fql])
global.generateFql = (ast) => marker('generate', [ast])
global.originalValidate = (ast, data) => marker('validate', [ast, data === undefined ? { __undefined: true } : data])
function record(actual, expected, how) {
  if (!actual || !actual.__call) throw new Error('unexpected expect() in ' + current)
  if (actual.__call === 'parse') out.parse.push({ test: current, fql: actual.args[0], expect: expected, compare: how })
  else if (actual.__call === 'validate') out.validate.push({ test: current, ast: actual.args[0], data: actual.args[1], expect: expected })
}
global.expect = (actual) => ({
  toEqual: (e) => record(actual, e, 'equal'),
  toMatchObject: (e) => record(actual, e, 'subset'),
})
global.expect.objectContaining = (o) => ({ __objectContaining: o })
function run(file, src) {
  src = src.replace(/^import .*$/m, '')
    .replace('const testFql = (fql: string, ast: any): void => {', 'const testFql = (fql, ast) => {')
    .replace('const validate = (ast: any, data: any): boolean => originalValidate(ast, data)',
             'const validate = (ast, data) => originalValidate(ast, data)')
  new Function(src)()
}
Error.prototype.toJSON = function () { return { __error: this.message } }
run('fql', fs.readFileSync('fql.test.ts', 'utf8'))
run('validate', fs.readFileSync('validate.test.ts', 'utf8'))
fs.writeFileSync('out.json', JSON.stringify(out, null, 1))
console.log(out.parse.length, out.validate.length)

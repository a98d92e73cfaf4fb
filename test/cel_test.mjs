// The matchConditions each policy declares (hci-admission rules), evaluated
// with a CEL implementation (cel-js from the npm registry, installed into
// .deps/ by scripts/install-deps.sh), as kube-apiserver evaluates them
// before calling a webhook: a table of VM objects with the answer each must
// give, and every review fixture of that resource, which must be sent
// whenever the policy would do more than allow it silently.
//   node test/cel_test.mjs BINARY SOURCE_DIR
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [bin, src] = process.argv.slice(2)
const celPath = join(src, '.deps/cel/node_modules/@marcbachmann/cel-js/lib/index.js')
const { evaluate } = await import(pathToFileURL(celPath).href)

let n = 0
let failed = 0
const lines = []
function check(name, ok, detail = '') {
  n += 1
  if (!ok) failed += 1
  lines.push(`${ok ? 'ok' : 'not ok'} ${n} - ${name}${ok || !detail ? '' : ` # ${detail}`}`)
}

const rules = JSON.parse(execFileSync(bin, ['rules'], { encoding: 'utf8' }))
const guard = rules['/validate/pvc-cleanup-guard']
check('pvc-cleanup-guard declares one matchCondition', guard?.matchConditions?.length === 1)
const expression = guard.matchConditions[0].expression

function sent(object, oldObject) {
  try {
    return evaluate(expression, { object, oldObject })
  } catch (e) {
    return `error: ${e.message}`
  }
}

const REMOVED = 'harvesterhci.io/removedPersistentVolumeClaims'
const REMOVE_ALL = 'harvesterhci.io/removeAllPersistentVolumeClaims'
const vm = (annotations) => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: annotations === undefined ? { name: 'vm' } : { name: 'vm', annotations },
  spec: { template: { spec: { volumes: [] } } },
})
const table = [
  ['CREATE without annotations', vm(undefined), null, false],
  ['CREATE with other annotations', vm({ a: '1' }), null, false],
  ['CREATE with the list', vm({ [REMOVED]: 'x' }), null, true],
  ['CREATE with removeAll', vm({ [REMOVE_ALL]: 'true' }), null, true],
  ['CREATE with an empty list', vm({ [REMOVED]: '' }), null, true],
  ['UPDATE adding the list', vm({ [REMOVED]: 'x' }), vm(undefined), true],
  ['UPDATE adding the list beside others', vm({ a: '1', [REMOVED]: 'x' }), vm({ a: '1' }), true],
  ['UPDATE changing the list', vm({ [REMOVED]: 'x,y' }), vm({ [REMOVED]: 'x' }), true],
  ['UPDATE adding removeAll to a VM with the list', vm({ [REMOVED]: 'x', [REMOVE_ALL]: 'true' }), vm({ [REMOVED]: 'x' }), true],
  ['UPDATE changing removeAll', vm({ [REMOVE_ALL]: 'true' }), vm({ [REMOVE_ALL]: 'false' }), true],
  ['UPDATE leaving both as they were', vm({ [REMOVED]: 'x', [REMOVE_ALL]: 'true' }), vm({ [REMOVED]: 'x', [REMOVE_ALL]: 'true' }), false],
  ['UPDATE changing another annotation only', vm({ [REMOVED]: 'x', a: '2' }), vm({ [REMOVED]: 'x', a: '1' }), false],
  ['UPDATE removing the list', vm({ a: '1' }), vm({ [REMOVED]: 'x' }), false],
  ['UPDATE removing every annotation', vm(undefined), vm({ [REMOVED]: 'x' }), false],
]
for (const [name, object, oldObject, want] of table) {
  const got = sent(object, oldObject)
  check(`${name}: ${want ? 'sent' : 'not sent'}`, got === want, `got ${got}`)
}

// Every VM review fixture: not sent only where the policy allows silently.
const dir = join(src, 'test/fixtures/e2e')
for (const file of readdirSync(dir).sort()) {
  const fixture = JSON.parse(readFileSync(join(dir, file), 'utf8'))
  const request = fixture.review?.request
  if (request?.resource?.resource !== 'virtualmachines') continue
  const got = sent(request.object, request.oldObject ?? null)
  const silent = fixture.expect.allowed && !fixture.expect.warning
  check(`${file}: ${got === true ? 'sent' : 'not sent'}`, got === true || (got === false && silent), `got ${got}`)
}

console.log(`1..${n}`)
for (const line of lines) console.log(line)
process.exit(failed ? 1 : 0)

/**
 * Lua for scripts that carry a batch of steps in one call (the redirect's clicks, the ledger steps):
 * runs `call` under pcall and puts its reply in `slot`, or its error as an error reply of its own, so
 * one step fails alone and every other step's reply still comes back.
 */
export function pcallInto(slot: string, call: string): string {
  return `local ok, r = pcall(${call})
  if ok then
    ${slot} = r
  elseif type(r) == 'table' and r.err then
    ${slot} = { err = r.err }
  else
    ${slot} = { err = tostring(r) }
  end`;
}

/**
 * Lua that runs `call` under pcall (pcallInto) once for each i from 1 to `count` (a Lua expression,
 * e.g. `#KEYS / 2`), the replies in a table `out` in that order, and returns it: the body of a batch
 * script whose every step answers alone.
 */
export function pcallEachLua(count: string, call: string): string {
  return `local out = {}
for i = 1, ${count} do
  ${pcallInto('out[i]', call)}
end
return out
`;
}

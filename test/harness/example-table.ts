/** The unit tests' example zone (records.ts exampleZone) in an in-memory store, served by a table. */
import { textToName } from '../../src/dns/name.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import { ZoneStore } from '../../src/store/zone-store.js';
import { exampleZone } from './records.js';

export function exampleTable(): { store: ZoneStore; table: ZoneTable } {
  const store = new ZoneStore(':memory:');
  store.replaceZone('example.test', exampleZone(), { serial: 1, primary: 'test', now: 0 });
  const table = new ZoneTable();
  table.add('example.test', textToName('example.test'), store, { state: 'ok' });
  return { store, table };
}

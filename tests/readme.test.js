// readme.test.js: the README's first JavaScript example runs as written (against this checkout).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

test('the README API example runs', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const example = readme.match(/```js\n([\s\S]*?)```/)[1];
  assert.match(example, /from 'rope-wasm'/);
  const source = example.replace("from 'rope-wasm'", `from '${new URL('../js/index.js', import.meta.url)}'`);
  await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
});

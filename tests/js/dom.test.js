// dom.js's number format, the one every report uses.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fmt } from "../../hardex_nb/widgets/static/dom.js";

test("fmt: a dash for nothing, whole numbers grouped, fractions to three places", () => {
  assert.equal(fmt(null), "—");
  assert.equal(fmt(undefined), "—");
  assert.equal(fmt(Number.NaN), "—");
  assert.equal(fmt(12345), "12,345");
  assert.equal(fmt(0.98765), "0.988");
  assert.equal(fmt("mAP"), "mAP");
});

test("fmt: a fraction of 1 or 0 reads as a fraction, not as a count", () => {
  assert.equal(fmt(1, true), "1.000");
  assert.equal(fmt(0, true), "0.000");
  assert.equal(fmt(1), "1");
  assert.equal(fmt(null, true), "—");
});

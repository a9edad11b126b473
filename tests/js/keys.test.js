// The Annotator's key table (annotator/keys.js): one table drives the handler and the help.
import assert from "node:assert/strict";
import { test } from "node:test";
import { actionFor, chordFor, KEYS } from "../../hardex_nb/widgets/static/annotator/keys.js";

test("every row names keys, how they are shown, what they do and an action", () => {
  for (const [keys, shown, what, action, where] of KEYS) {
    assert.ok(Array.isArray(keys) && keys.length > 0, `${shown}: no keys`);
    assert.equal(typeof shown, "string");
    assert.equal(typeof what, "string");
    assert.match(action, /^[a-zA-Z]+$/);
    assert.ok(where === undefined || ["review", "detection"].includes(where), `${shown}: ${where}`);
  }
});

test("no key means two things in one widget", () => {
  for (const review of [false, true]) {
    for (const detection of [false, true]) {
      const seen = new Map();
      for (const [keys, , , action, where] of KEYS) {
        const here =
          where === undefined ||
          (where === "review" && review) ||
          (where === "detection" && detection);
        if (!here) continue;
        for (const key of keys) {
          assert.ok(!seen.has(key), `${key}: ${seen.get(key)} and ${action}`);
          seen.set(key, action);
        }
      }
    }
  }
});

test("actionFor: the table's action where the key applies, else null", () => {
  assert.equal(actionFor("n", false, true), "next");
  assert.equal(actionFor("ArrowLeft", false, false), "prev");
  assert.equal(actionFor("7", false, false), "label");
  assert.equal(actionFor("Delete", false, true), "delete");
  assert.equal(actionFor("Delete", false, false), null); // no boxes to delete in classification
  assert.equal(actionFor("b", false, false), null);
  assert.equal(actionFor("§", true, true), null);
});

test("Ctrl chords: undo, redo both ways, copy and paste only where there are objects", () => {
  assert.equal(chordFor("z", false, false), "undo");
  assert.equal(chordFor("Z", true, false), "redo"); // Shift makes the key upper case
  assert.equal(chordFor("y", false, true), "redo");
  assert.equal(chordFor("c", false, true), "copy");
  assert.equal(chordFor("v", false, true), "paste");
  assert.equal(chordFor("c", false, false), null); // classification: the browser copies
  assert.equal(chordFor("s", false, true), null);
});

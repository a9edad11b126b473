// The first-run tour names keys the widget really has, for each kind of Annotator.
import assert from "node:assert/strict";
import { test } from "node:test";
import { KEYS } from "../../hardex_nb/widgets/static/annotator/keys.js";
import { tourSteps } from "../../hardex_nb/widgets/static/annotator/tour.js";

const bound = (key, review, detection) =>
  KEYS.some(
    ([keys, , , , where]) =>
      keys.includes(key) &&
      (!where || (where === "review" && review) || (where === "detection" && detection)),
  );

test("every key a tour step names is in the key table for that widget", () => {
  for (const detection of [false, true])
    for (const review of [false, true])
      for (const [title, , keys] of tourSteps(detection, review))
        for (const key of keys)
          assert.ok(bound(key, review, detection), `${title}: ${key} (det ${detection})`);
});

test("detection draws and edits, classification labels, Review starts with the queue", () => {
  const titles = (d, r) => tourSteps(d, r).map(([t]) => t);
  assert.deepEqual(titles(true, false), ["Draw", "Edit", "Move on"]);
  assert.deepEqual(titles(false, false), ["Label", "Move on"]);
  assert.deepEqual(titles(false, true), ["Review", "Label", "Move on"]);
});

/** The Annotator's first-run tour: a few steps at the top of the side panel the first time an
 * Annotator opens in this browser. "Skip tour" or "Done" remembers that (localStorage); the
 * header's "Tour" button shows it again. Each step names keys of the `KEYS` table (keys.js):
 * tests/js checks that they are there. */
import { h } from "../dom.js";

export const TOUR_KEY = "hardex_nb.tour.annotator";

/**
 * The steps for this widget: [title, text, keys it names].
 * @param {boolean} detection
 * @param {boolean} review
 * @returns {[string, string, string[]][]}
 */
export function tourSteps(detection, review) {
  const steps = [];
  if (review)
    steps.push([
      "Review",
      "The model's labels wait here, hardest first, with the reasons they are hard. Fix what is wrong, then c confirms the image, k skips it and x deletes it.",
      ["c", "k", "x"],
    ]);
  if (detection)
    steps.push(
      [
        "Draw",
        "b, then drag on the image: a box. g: a polygon (click its points, Enter closes it). a: point to label, a click on an object proposes its box (Enter keeps it).",
        ["b", "g", "a", "Enter"],
      ],
      [
        "Edit",
        "Press and drag any shape to move it, its corners to resize it. 1–9 gives the selected shape a label; Delete removes it.",
        ["1", "Delete"],
      ],
    );
  else
    steps.push([
      "Label",
      "A number key 1–9 (or a click on a class) labels the image and opens the next one: one key per image.",
      ["1"],
    ]);
  steps.push([
    "Move on",
    "→ or n: the next image, ← or p: the previous. Ctrl+Z undoes, Ctrl+Shift+Z redoes. Every edit is on disk at once; the keys are listed under Keys.",
    ["ArrowRight", "n", "ArrowLeft", "p"],
  ]);
  return steps;
}

/** Whether the tour was finished or skipped in this browser (storage refused: yes). */
export function tourDone() {
  try {
    return globalThis.localStorage?.getItem(TOUR_KEY) === "done";
  } catch (_e) {
    return true;
  }
}

export function rememberTour() {
  try {
    globalThis.localStorage?.setItem(TOUR_KEY, "done");
  } catch (_e) {
    // storage refused (a private window): the tour shows again next time
  }
}

/**
 * The card of step `at` of `steps`.
 * @param {[string, string, string[]][]} steps
 * @param {number} at
 * @param {{onNext: () => void, onClose: () => void}} o
 */
export function tourCard(steps, at, { onNext, onClose }) {
  const [title, text] = steps[at];
  const last = at === steps.length - 1;
  return h(
    "div",
    { class: "tour", "data-role": "tour", "data-step": at + 1 },
    h("b", {}, `Tour ${at + 1} / ${steps.length} · ${title}`),
    h("p", {}, text),
    h(
      "div",
      { class: "bar" },
      h(
        "button",
        {
          class: "primary",
          "data-action": last ? "tour-done" : "tour-next",
          onclick: last ? onClose : onNext,
        },
        last ? "Done" : "Next ›",
      ),
      last ? null : h("button", { "data-action": "tour-skip", onclick: onClose }, "Skip tour"),
    ),
  );
}

/** Pieces of the Annotator's side panel that need no state of their own. */
import { h } from "../dom.js";

/** Drawing tools: [tool, button text, key]. */
export const TOOLS = [
  ["box", "Box (b)", "b"],
  ["polygon", "Polygon (g)", "g"],
  ["ignore", "Ignore box (i)", "i"],
  ["ignore_polygon", "Ignore polygon (u)", "u"],
  ["pan", "Pan (h)", "h"],
  ["point", "Point (a)", "a"],
];

/** A box's hard type (none / false positive / missed), changed in place; on a model's
 * box in the words `hardText` uses (shapes.js). */
export function hardTypeSelect(a) {
  const model = a.origin !== "human";
  const select = h(
    "select",
    { "data-hard-type": a.ann_id, title: "hard type" },
    ...[
      ["none", "—"],
      ["false_positive", model ? "doubtful" : "false positive"],
      ["missed", model ? "possible object" : "missed"],
    ].map(([v, text]) =>
      h("option", { value: v, ...(a.hard_type === v ? { selected: "" } : {}) }, text),
    ),
  );
  select.addEventListener("click", (e) => e.stopPropagation());
  select.addEventListener("change", () =>
    select.dispatchEvent(
      new CustomEvent("hard-type", {
        bubbles: true,
        detail: { ann_id: a.ann_id, hard_type: select.value },
      }),
    ),
  );
  return select;
}

/** Add a label; rename or delete the chosen one (deleting asks first, with its counts). */
export function labelEditor(model, send, chosen) {
  const asking = model.get("asking") || {};
  if (asking.message) {
    return h(
      "div",
      { class: "bar", "data-role": "asking" },
      h("span", {}, asking.message),
      h(
        "button",
        {
          class: "danger",
          "data-action": "asking-yes",
          onclick: () => send({ ...asking, message: undefined, confirmed: true }),
        },
        "Yes",
      ),
      h(
        "button",
        {
          "data-action": "asking-no",
          onclick: () => {
            model.set("asking", {});
            model.save_changes();
          },
        },
        "No",
      ),
    );
  }
  const name = h("input", { placeholder: "label name", "data-role": "label-name" });
  name.addEventListener("keydown", (e) => e.stopPropagation());
  const value = () => name.value.trim();
  return h(
    "div",
    { class: "bar" },
    name,
    h(
      "button",
      {
        "data-action": "add-label",
        onclick: () => value() && send({ action: "add_label", name: value() }),
      },
      "Add",
    ),
    chosen
      ? h(
          "button",
          {
            "data-action": "rename-label",
            onclick: () =>
              value() && send({ action: "rename_label", label: chosen, name: value() }),
          },
          `Rename ${chosen}`,
        )
      : null,
    chosen
      ? h(
          "button",
          {
            class: "danger",
            "data-action": "delete-label",
            onclick: () => send({ action: "delete_label", label: chosen }),
          },
          `Delete ${chosen}`,
        )
      : null,
  );
}

// The WCAG 2.x contrast of every element that draws text, against the background it is drawn on.
//
// Evaluated in the page by test_report_browser.py; its value is a JSON-able object:
//   texts: one entry per element with its own visible text (its direct text nodes):
//          {element, text, color, background, ratio}
//   unmeasured: elements whose paint this model cannot follow (a background image or gradient,
//          opacity below 1, a text shadow, a filter or blend mode); the test requires none.
// The background is the page canvas (white) with the background-color of each ancestor, root
// first, composited over it with its alpha ("over" operator); the text colour is composited
// over that. Every <details> is opened first so the text it holds is measured too.
(() => {
  "use strict";
  for (const details of document.querySelectorAll("details")) details.open = true;

  const parse = (css) => {
    const match = css.match(/^rgba?\(([^)]*)\)$/);
    if (!match) throw new Error(`a colour this check does not read: ${css}`);
    const [r, g, b, a = 1] = match[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const over = (top, below) => ({
    r: top.r * top.a + below.r * (1 - top.a),
    g: top.g * top.a + below.g * (1 - top.a),
    b: top.b * top.a + below.b * (1 - top.a),
    a: 1,
  });
  // WCAG 2.x relative luminance of an sRGB colour.
  const luminance = ({ r, g, b }) => {
    const linear = (channel) => {
      const c = channel / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const ratio = (x, y) => {
    const [light, dark] = [luminance(x), luminance(y)].sort((p, q) => q - p);
    return (light + 0.05) / (dark + 0.05);
  };
  const css = ({ r, g, b }) => `rgb(${[r, g, b].map(Math.round).join(", ")})`;
  const name = (element) =>
    element.tagName.toLowerCase() +
    (element.id ? `#${element.id}` : "") +
    [...element.classList].map((c) => `.${c}`).join("");
  const path = (element) => {
    const names = [];
    for (let node = element; node && node !== document.body; node = node.parentElement) {
      names.unshift(name(node));
    }
    return names.join(" > ");
  };

  const texts = [];
  const unmeasured = [];
  for (const element of document.querySelectorAll("*")) {
    const style = getComputedStyle(element);
    if (
      style.backgroundImage !== "none" ||
      Number(style.opacity) < 1 ||
      style.textShadow !== "none" ||
      style.filter !== "none" ||
      style.mixBlendMode !== "normal"
    ) {
      unmeasured.push(path(element));
    }
    const own = [...element.childNodes]
      .filter((node) => node.nodeType === Node.TEXT_NODE)
      .map((node) => node.textContent)
      .join("")
      .replace(/\s+/g, " ")
      .trim();
    if (!own || style.visibility !== "visible" || element.getClientRects().length === 0) continue;
    if (["head", "title", "style", "script"].includes(element.tagName.toLowerCase())) continue;
    let background = { r: 255, g: 255, b: 255, a: 1 };
    const chain = [];
    for (let node = element; node; node = node.parentElement) chain.unshift(node);
    for (const node of chain) background = over(parse(getComputedStyle(node).backgroundColor), background);
    const color = over(parse(style.color), background);
    texts.push({
      element: path(element),
      text: own.slice(0, 80),
      color: css(color),
      background: css(background),
      ratio: ratio(color, background),
    });
  }
  return { texts, unmeasured };
})()

// Search as readers use it. Runs before Material's bundle, which reads what is set here.
(() => {
  const QUERY = "[data-md-component=search-query]";
  const japanese = document.documentElement.lang === "ja";

  // 1. Each language has its own index (ja/search/search_index.json beside the English
  //    search/search_index.json), fetched when the reader first goes to the search box
  //    rather than on every page load.
  let start;
  const wanted = new Promise(resolve => { start = resolve; });
  const { open, send } = XMLHttpRequest.prototype;  // Material loads the index with these
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    const target = new URL(`${url}`, location.href);
    this.searchIndex = target.pathname.endsWith("/search/search_index.json");
    if (this.searchIndex && japanese)
      target.pathname = target.pathname.replace(/search\/search_index\.json$/, "ja/$&");
    return open.call(this, method, this.searchIndex ? target.href : url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (...args) {
    if (!this.searchIndex) return send.apply(this, args);
    wanted.then(() => send.apply(this, args));
  };
  document.addEventListener("focusin", event => {
    if (event.target.matches && event.target.matches(QUERY)) start();
  });

  // 2. Material searches on key releases. A query pasted with the mouse, dropped, or
  //    committed by an input method sends none: search on every change of the text.
  for (const type of ["input", "compositionend"])
    document.addEventListener(type, event => {
      if (event.target.matches && event.target.matches(QUERY))
        event.target.dispatchEvent(new KeyboardEvent("keyup"));
    });

  // 3. Japanese queries are split into words as the index splits the pages' text:
  //    Material's worker, wrapped (assets/javascripts/workers/search-segmented.js).
  if (japanese) {
    const element = document.getElementById("__config");
    const config = JSON.parse(element.textContent);
    config.search = config.search.replace(/[^/]+$/, name => `search-segmented.js#${name}`);
    element.textContent = JSON.stringify(config);
  }
})();

// Material's search worker (named after the "#"), with each Japanese run of a query split
// into words by the same segmenter that split the pages' text when the index was built
// (lunr's TinySegmenter, which Material loads for "ja"). Without it, a phrase written
// without spaces, as Japanese is written, is one word that no page contains.
const listen = self.addEventListener.bind(self);
const JAPANESE = /[\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}ー々]+/gu;

function segment(query) {
  const segmenter = self.lunr && self.lunr.segmenter;
  if (!segmenter) return query;
  return query.replace(JAPANESE, run => ` ${segmenter.segment(run).join(" ")} `).trim();
}

self.addEventListener = (type, listener, options) => listen(type, type !== "message" ? listener
  : event => listener(event.data && event.data.type === 2 && typeof event.data.data === "string"
    ? { data: { ...event.data, data: segment(event.data.data) } } : event), options);

importScripts(decodeURIComponent(self.location.hash.slice(1)));

// Material wraps wide tables in a box that scrolls sideways when the screen is narrow: make
// it reachable with the keyboard (WCAG 2: a scrollable region must be focusable).
document$.subscribe(function () {
  document.querySelectorAll(".md-typeset__scrollwrap").forEach(function (box) {
    box.tabIndex = 0;
  });
});

// Boot: route on load and on every hash change (the page scripts have registered their routes).
'use strict';

window.addEventListener('hashchange', route);
if (document.readyState === 'loading') window.addEventListener('DOMContentLoaded', route);
else route();

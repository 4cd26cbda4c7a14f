// acme's enrichment: an async function, a model beyond the original webtask ones.
const directory = { 'Analytical Engines': { industry: 'computing', employees: 12 } };

module.exports = async function (ctx) {
  return directory[ctx.body.company] || { industry: null, employees: null };
};

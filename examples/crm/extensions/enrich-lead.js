// acme's enrichment: asks acme's own company directory, with acme's API key.
// DIRECTORY_URL and DIRECTORY_KEY are secrets the platform stored with the
// extension; the host makes the request under its egress policy.
module.exports = async function (ctx) {
  if (!ctx.body.company) return { industry: null, employees: null };
  const url = new URL('/companies', ctx.secrets.DIRECTORY_URL);
  url.searchParams.set('name', ctx.body.company);
  const r = await fetch(url, {
    headers: { authorization: 'Bearer ' + ctx.secrets.DIRECTORY_KEY },
    signal: AbortSignal.timeout(400),
  });
  if (r.status === 404) return { industry: null, employees: null };
  if (!r.ok) throw new Error('the company directory answered ' + r.status);
  const company = await r.json();
  return { industry: company.industry ?? null, employees: company.employees ?? null };
};

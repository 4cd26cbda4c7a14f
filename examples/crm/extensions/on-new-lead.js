// acme's lead scoring: corporate e-mail addresses score high.
module.exports = function (ctx, cb) {
  const lead = ctx.body;
  const at = lead.email.indexOf('@');
  if (at < 0) {
    // Shows how a failing extension reaches the platform: a typed error.
    return cb(new Error('cannot score ' + lead.name + ': "' + lead.email + '" is not an e-mail address'));
  }
  const corporate = !/@(gmail|yahoo|hotmail)\.com$/.test(lead.email);
  cb(null, { score: corporate ? 95 : 20, accept: corporate });
};

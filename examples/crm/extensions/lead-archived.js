// acme's archive hook: writes to the container's log stream.
module.exports = function (ctx, cb) {
  console.log('archived ' + ctx.body.lead.name + ' (' + ctx.body.reason + ')');
  cb(null, { noted: true });
};

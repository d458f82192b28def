% rebase('base', title=title, nav=nav)
<section class="panel">
  <h1>推送配置 Push config · {{'全部服务车 all carts' if target == '_all' else target}}</h1>
  <p>当前 Now retained: {{('v' + str(current.get('version'))) if current else '无 none'}}</p>
% if not signed:
  <p class="notice warn">本管理台未配置车队密钥：推送不签名，设置了 fleet_keys 的服务车会拒绝 · No fleet key on this desk (--key/--kid): the push is unsigned and carts with security.fleet_keys refuse it</p>
% end
  <form class="push" method="post" action="/act/push/preview">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <input type="hidden" name="target" value="{{target}}">
    <label for="version">版本 Version</label>
    <input id="version" name="version" type="number" min="1" value="{{version}}" required>
    <label for="document">配置（TOML 或 JSON，部分即可）Config (TOML or JSON, partial)</label>
    <textarea id="document" name="document" rows="14" spellcheck="false">{{text}}</textarea>
    <button class="btn primary" type="submit">预览变更 Review the change</button>
  </form>
</section>

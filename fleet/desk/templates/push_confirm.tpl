% rebase('base', title=title, nav=nav)
<section class="panel">
  <h1>确认推送 Confirm push · {{'全部服务车 all carts' if p.target == '_all' else p.target}} · v{{p.version}}</h1>
  <p>当前 Now retained: {{('v' + str(p.seen_version)) if p.current else '无 none'}} → v{{p.version}}{{'' if signed else ' · 未签名 unsigned'}}</p>
% if p.problems:
  <div class="notice error" id="problems"><p>不能推送 Cannot push:</p><ul>
% for line in p.problems:
    <li>{{line}}</li>
% end
  </ul></div>
% end
% for line in p.notes:
  <p class="notice warn">{{line}}</p>
% end
  <pre class="diff" id="diff">
% for sign, line in p.lines:
<span class="d{{ {'+': 'add', '-': 'del', ' ': 'same'}[sign] }}">{{sign}} {{line}}</span>
% end
</pre>
% if not p.problems:
  <form method="post" action="/act/push/confirm">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <input type="hidden" name="target" value="{{p.target}}">
    <input type="hidden" name="version" value="{{p.version}}">
    <input type="hidden" name="seen_version" value="{{p.seen_version if p.seen_version is not None else ''}}">
    <input type="hidden" name="document" value="{{p.text}}">
    <button class="btn primary" id="confirm" type="submit">确认推送 Push it</button>
  </form>
% end
  <p><a href="/act/push?target={{p.target}}">← 修改 Edit</a></p>
</section>

% rebase('base', title=title, nav=nav)
<section class="panel">
  <h1>确认命令 Confirm command · {{p.cart}}</h1>
% if p.problems:
  <div class="notice error" id="problems"><ul>
% for line in p.problems:
    <li>{{line}}</li>
% end
  </ul></div>
% end
% if card and card['state'] != 'online':
  <p class="notice warn">服务车当前{{'离线' if card['state'] == 'offline' else '状态未知'}}：离线时命令会被丢弃，不会发送 · The cart is {{card['state']}}: an offline cart's command is refused, not queued</p>
% end
  <pre class="diff" id="diff"><span class="dadd">+ {{p.cart}}: {{p.name}} {{' '.join(f'{k}={v}' for k, v in p.args.items())}}</span></pre>
% if not p.problems:
  <form method="post" action="/act/command/confirm">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <input type="hidden" name="cart" value="{{p.cart}}">
    <input type="hidden" name="name" value="{{p.name}}">
    <input type="hidden" name="args" value="{{args_text}}">
    <button class="btn primary" id="confirm" type="submit">确认发送 Send it{{'' if signed else '（未签名 unsigned）'}}</button>
  </form>
% end
  <p><a href="/act/command?cart={{p.cart}}">← 修改 Edit</a></p>
</section>

% rebase('base', title=title, nav=nav)
<section class="panel">
  <h1>发送命令 Send command · {{cart}}</h1>
% if card and card['state'] != 'online':
  <p class="notice warn">服务车当前{{'离线' if card['state'] == 'offline' else '状态未知'}}：命令不会排队，离线时发送会丢失 · The cart is {{card['state']}}: commands are not queued for it</p>
% end
  <form class="command" method="post" action="/act/command/preview">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <input type="hidden" name="cart" value="{{cart}}">
    <label for="name">命令 Command</label>
    <select id="name" name="name">
% for n in names:
      <option value="{{n}}" {{'selected' if n == name else ''}}>{{n}} {{' '.join(k + '=…' for k in signatures[n])}}</option>
% end
    </select>
    <label for="args">参数 Arguments (name=value …)</label>
    <input id="args" name="args" value="{{args}}" maxlength="600" placeholder="compartment=A03">
    <button class="btn primary" type="submit">预览 Review</button>
  </form>
</section>

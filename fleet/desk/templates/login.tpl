% rebase('base', title=title, nav='login')
<form class="panel login" method="post" action="/login" autocomplete="off">
  <h1><span class="zh">登录</span> <span class="en">Log in</span></h1>
% if locked:
  <p class="notice error">账户已暂时锁定，请稍后再试 · Too many wrong passwords: the account is locked for a few minutes</p>
% elif failed:
  <p class="notice error">用户名或密码错误 · Wrong user name or password</p>
% end
  <input type="hidden" name="next" value="{{next}}">
  <label for="username"><span class="zh">用户名</span> <span class="en">User name</span></label>
  <input id="username" name="username" autocapitalize="none" maxlength="32" required autofocus>
  <label for="password"><span class="zh">密码</span> <span class="en">Password</span></label>
  <input id="password" name="password" type="password" maxlength="128" required>
  <button class="btn primary" type="submit">登录 Log in</button>
</form>

document.getElementById('app').textContent='元境平台';
